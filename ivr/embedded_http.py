"""Serve an ASGI app with uvicorn inside our own event loop, on a socket bound up front.

uvicorn bounds only the idle time between requests (`timeout_keep_alive`): a connection that
sends half a request, or nothing, stays open for good, and it accepts as many connections as
the process has descriptors. `_GuardedH11Protocol`, the one place that works around it, closes a
connection from a peer outside `allow` at once, one whose request is not in whole within
`header_timeout`, and keeps at most `max_connections` open, a quarter of them per peer address:
past either bound a new connection takes the place of the oldest one that is not being answered
(still sending its request, or idle between requests) of the same peer, or of the peer holding
the most, so that a client holding connections half-open cannot lock out the health probes;
only when none can give way is the new one closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
from collections import Counter
from collections.abc import Iterator
from typing import Any

import h11
import uvicorn
from starlette.requests import Request
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

from ivr.logging import ThrottledWarning, get_logger
from ivr.netallow import Network, allowed

log = get_logger("ivr.web")

_REFUSALS_LOGGED_EVERY = 10.0
"""Seconds between two warnings about refused connections: a flood must not flood the log too."""
_WAITING = (h11.IDLE, h11.SEND_BODY)
"""A client's h11 states while its request is still arriving."""


async def read_capped(request: Request, limit: int) -> bytes | None:
    """A request's body, or None past `limit` bytes (by its Content-Length, or as soon as it
    passes the limit while read): every route that reads a body bounds it so."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > limit:
            return None
    return bytes(received)


class _Limits:
    """What the connections of one server share: their bounds, the open connections oldest
    first, and the warnings about refusals."""

    def __init__(
        self, max_connections: int | None, header_timeout: float | None, allow: tuple[Network, ...] | None
    ) -> None:
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.allow = allow
        self.per_peer = None if max_connections is None else max(1, max_connections // 4)
        self.open: dict[_GuardedH11Protocol, str] = {}  # oldest first, with its peer's address
        self.refused = ThrottledWarning(log, "http.connections_refused", every=_REFUSALS_LOGGED_EVERY)
        self.evicted = ThrottledWarning(log, "http.connections_evicted", every=_REFUSALS_LOGGED_EVERY)
        self.outsiders = ThrottledWarning(log, "http.peer_refused", every=_REFUSALS_LOGGED_EVERY)

    def make_room(self, peer: str) -> bool:
        """Whether a connection from `peer` may open: under both bounds, or after closing one
        that is not being answered — the peer's own past its share, else the busiest peer's."""
        if self.max_connections is None or self.per_peer is None:
            return True
        counts = Counter(self.open.values())
        if counts[peer] >= self.per_peer:
            chosen: str | None = peer
        elif len(self.open) >= self.max_connections:
            chosen = None
        else:
            return True
        for host in [chosen] if chosen is not None else [host for host, _ in counts.most_common()]:
            for connection, its_peer in self.open.items():
                if its_peer == host and not connection.answering:
                    connection.transport.abort()
                    del self.open[connection]
                    self.evicted.note(peer=host, max_connections=self.max_connections)
                    return True
        self.refused.note(peer=peer, max_connections=self.max_connections)
        return False


class _GuardedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, plus a deadline on each request and a bound on connections.

    The deadline runs from the connection's start, or from the first byte of a request after
    an idle keep-alive, until the request (head and body) is in; uvicorn's own keep-alive timeout
    still closes idle connections between requests.
    """

    def __init__(self, *args: Any, limits: _Limits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = limits
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        peername = transport.get_extra_info("peername")
        peer = str(peername[0]) if isinstance(peername, tuple) else ""
        outsider = self._limits.allow is not None and not allowed(self._limits.allow, peer or None)
        if outsider or not self._limits.make_room(peer):
            if outsider:
                self._limits.outsiders.note(peer=peer or "?")
            self.transport = transport  # for connection_lost
            transport.abort()
            return
        self._limits.open[self] = peer
        super().connection_made(transport)
        self._start_deadline()

    @property
    def answering(self) -> bool:
        """Whether a request of this connection is in and its answer not sent whole yet."""
        return self.conn.their_state not in _WAITING and self.cycle is not None and not self.cycle.response_complete

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.transport.get_protocol() is not self:
            self._limits.open.pop(self, None)  # a WebSocket now: its own protocol takes over
        if self.conn.their_state not in _WAITING or self.transport.get_protocol() is not self:
            self._stop_deadline()  # the request is in, the connection is done with, or a WebSocket now
        elif self._deadline is None:
            self._start_deadline()  # the first bytes of a request after an idle keep-alive

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_deadline()
        self._limits.open.pop(self, None)
        super().connection_lost(exc)

    def _start_deadline(self) -> None:
        if self._limits.header_timeout is not None:
            self._deadline = self.loop.call_later(self._limits.header_timeout, self._too_slow)

    def _stop_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            log.debug("http.request_timeout", peer=self.client[0] if self.client else None)
            self.transport.abort()


class _EmbeddedServer(uvicorn.Server):
    # Signals belong to the program that embeds the server, not to uvicorn.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class EmbeddedHttpServer:
    """`app` listening on `host:port` (port 0: any free port) until `stop()`.

    The socket is bound and listening before `start()` returns, so a client may connect at once.
    Peers outside `allow` (None: anyone) are closed at once; a request must arrive whole within
    `header_timeout` seconds; at most `max_connections` are open (None: no bound; see the
    module's docstring). The client's address is the socket's peer: X-Forwarded-For is not believed.
    """

    def __init__(
        self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0, *,
        max_connections: int | None = None, header_timeout: float | None = 5.0,
        allow: tuple[Network, ...] | None = None,
    ) -> None:
        self._app = app
        self._host, self._port = host, port
        self._limits = _Limits(max_connections, header_timeout, allow)
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self.url = ""

    async def start(self) -> str:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        # proto must be IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted sockets only
        # then, and without it every answer waits about 40 ms for a delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self._host, self._port))
        except OSError:
            sock.close()
            raise
        sock.listen(1024)
        sock.setblocking(False)
        host, port = sock.getsockname()[:2]
        self.url = f"http://[{host}]:{port}" if family == socket.AF_INET6 else f"http://{host}:{port}"
        config = uvicorn.Config(
            self._app, log_config=None, access_log=False, lifespan="off", timeout_keep_alive=30,
            proxy_headers=False, http=functools.partial(_GuardedH11Protocol, limits=self._limits),  # type: ignore[arg-type]
        )
        self._server = _EmbeddedServer(config)
        self._task = asyncio.get_running_loop().create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                await self._task
                raise RuntimeError(f"the HTTP server on {self.url} stopped while starting")
            await asyncio.sleep(0.005)
        return self.url

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._server = self._task = None

    async def wait(self) -> None:
        """Until the server stops by itself (or the caller is cancelled)."""
        assert self._task is not None, "start() first"
        await asyncio.shield(self._task)

    async def __aenter__(self) -> EmbeddedHttpServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
