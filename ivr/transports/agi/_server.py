"""The FastAGI server: Asterisk connects (``AGI(agi://host:4573/keybox)``), we run one call.

Who may connect, and what a connection costs before it is a call: a peer outside `allow`
(``IVR_AGI_ALLOW``) is closed at once, before anything is read. A connection counts as a call
(`active`, what ``IVR_MAX_CALLS`` bounds) only once its AGI environment is complete; until then it
is `pending`, for at most `env_timeout` seconds, and at most `max_pending` are: past that the
oldest pending one is closed. Asterisk sends its environment the moment it connects, so the
oldest are the silent sockets of a flood, and a flood costs a bounded number of descriptors
without turning real calls away. Refusals are logged at most once a second, with a count.

One asyncio task per connection and nothing else per call: the task reads the environment,
builds an `AgiChannel` and an `AgiCall`, runs the handler inside `bind_call` (so every log
line of the call carries its id and route), then ends the session (`AgiCall.finish`: a
``HANGUP`` unless the flow hung up or transferred, or the caller is gone) and closes the
socket at once: after a hang-up Asterisk keeps the socket open until we close it, and after a
transfer closing it is what lets the dialplan go on to ``${IVR_TRANSFER}``.

Closing also breaks the reference cycle CPython 3.11's socket transport keeps to itself (its
``_read_ready_cb`` is a bound method of the transport), so a finished connection is freed by
reference counting instead of waiting for the cyclic garbage collector, which at 10,000
concurrent calls costs CPU and long collector pauses (see the performance notes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

from ivr.errors import AgiProtocolError
from ivr.logging import ThrottledWarning, get_logger
from ivr.netallow import Network, allowed, parse_networks
from ivr.sessions import CallSessions
from ivr.transports.agi._call import FINISH_TIMEOUT, AgiCall
from ivr.transports.agi._stream import (
    COMMAND_TIMEOUT,
    ENVIRONMENT_TIMEOUT,
    HANGUP_GRACE,
    LINE_LIMIT,
    AgiChannel,
    read_environment,
)

__all__ = ["LOOPBACK", "MAX_PENDING", "CallHandler", "FastAgiServer"]

CallHandler = Callable[[AgiCall], Awaitable[object]]

LOOPBACK = parse_networks("127.0.0.0/8,::1/128")
"""Who may connect by default: this machine only."""

MAX_PENDING = 1024
"""Connections still reading their environment at most; each holds a descriptor. Room for a
burst of real calls that all connect in one tick (their environments are read a tick later)."""

_log = get_logger(__name__)


class FastAgiServer:
    """Serves FastAGI connections, running `handler(call)` for each.

    The handler is expected to deal with its own errors (the flow records and hangs up);
    an exception escaping it is logged with its traceback as a last resort. `port` 0 picks a
    free port, readable as `port` after `start`. `allow`, `env_timeout`, `max_pending`: see the
    module's docstring.
    """

    def __init__(
        self,
        handler: CallHandler,
        host: str = "127.0.0.1",
        port: int = 4573,
        *,
        env_timeout: float = ENVIRONMENT_TIMEOUT,
        command_timeout: float = COMMAND_TIMEOUT,
        hangup_grace: float = HANGUP_GRACE,
        finish_timeout: float = FINISH_TIMEOUT,
        backlog: int = 1024,
        allow: Iterable[Network] = LOOPBACK,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self._handler = handler
        self._host = host
        self._port = port
        self._env_timeout = env_timeout
        self._command_timeout = command_timeout
        self._hangup_grace = hangup_grace
        self._finish_timeout = finish_timeout
        self._backlog = backlog
        self._allow = tuple(allow)
        self._max_pending = max_pending
        self._server: asyncio.Server | None = None
        self._calls = CallSessions("agi")
        self._pending: dict[asyncio.StreamWriter, None] = {}  # oldest first
        self._in_call = 0
        self._refused = ThrottledWarning(_log, "agi.peer_refused")
        self._evicted = ThrottledWarning(_log, "agi.pending_evicted")
        self.on_dropped: list[Callable[[str], None]] = []
        """Told of each connection closed before it became a call, and why: `refused` (a peer
        outside the allow list), `evicted` (the oldest waiting past `max_pending`), `no_environment`
        (none, or a broken one, within `env_timeout`). None leaves a call record: an operator
        counts them here."""

    @property
    def port(self) -> int:
        """The port listened on (the one picked when constructed with 0, once started)."""
        return self._port

    @property
    def active(self) -> int:
        """Calls in progress: past their AGI environment, in the handler, or ending."""
        return self._in_call

    @property
    def pending(self) -> int:
        """Connections still reading their AGI environment (not calls yet)."""
        return len(self._pending)

    @property
    def serving(self) -> bool:
        return self._server is not None and self._server.is_serving()

    async def start(self) -> None:
        """Listen. Raises `OSError` when the address cannot be bound."""
        if self._server is not None:
            raise RuntimeError("the FastAGI server was started already")
        self._server = await asyncio.start_server(
            self._accept, self._host, self._port, limit=LINE_LIMIT, backlog=self._backlog
        )
        self._port = self._server.sockets[0].getsockname()[1]
        _log.info("agi.listening", host=self._host, port=self._port)

    async def close(self) -> None:
        """Stop accepting connections; calls in progress go on."""
        if self._server is not None and self._server.is_serving():
            self._server.close()
            _log.info("agi.closed", active=self._calls.active)

    async def drain(self, grace: float) -> None:
        """Stop accepting, let calls in progress end within `grace` seconds, then cancel the
        rest and wait for them to end (each still closes its socket)."""
        await self.close()
        await self._calls.drain(grace)

    def _dropped(self, reason: str) -> None:
        for observe in self.on_dropped:
            observe(reason)

    # -- per connection ------------------------------------------------------------------

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A plain callback, not a coroutine: the task is ours, so we decide how it ends.
        peer = writer.get_extra_info("peername")
        if not allowed(self._allow, peer[0] if isinstance(peer, tuple) else None):
            close_transport(writer.transport)
            self._refused.note(peer=_peer(writer))
            self._dropped("refused")
            return
        if len(self._pending) >= self._max_pending:
            oldest = next(iter(self._pending))
            del self._pending[oldest]  # its task sees the stream end and returns quietly
            close_transport(oldest.transport)
            self._evicted.note(peer=_peer(oldest))
            self._dropped("evicted")
        self._pending[writer] = None
        self._calls.start(self._connection(reader, writer))

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            with self._calls.boundary():
                await self._session(reader, writer)
        except Exception:  # noqa: BLE001 - one connection's failure must not take the listener down
            _log.exception("agi.connection_failed")
        finally:
            close_transport(writer.transport)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            env = await read_environment(reader, timeout=self._env_timeout)
        except AgiProtocolError as exc:
            if writer in self._pending:  # else evicted, and logged as such
                _log.warning("agi.bad_environment", peer=_peer(writer), error=str(exc))
                self._dropped("no_environment")
            return
        finally:
            evicted = writer not in self._pending
            self._pending.pop(writer, None)
        if evicted:  # closed while its environment was on its way in
            return
        channel = AgiChannel(
            reader, writer, command_timeout=self._command_timeout, hangup_grace=self._hangup_grace
        )
        self._in_call += 1
        try:
            await self._calls.run(AgiCall(channel, env), self._handler, self._finish_timeout)
        finally:
            self._in_call -= 1


def close_transport(transport: asyncio.BaseTransport) -> None:
    """Close a socket transport now and break its self-reference (CPython 3.11).

    A transport still holding unsent data is aborted: its peer is not reading, and a polite
    close would keep it (and its buffer) until the peer goes away.
    """
    if isinstance(transport, asyncio.WriteTransport) and transport.get_write_buffer_size():
        transport.abort()
    else:
        transport.close()
    # `_SelectorSocketTransport._read_ready_cb` is a bound method of the transport itself.
    # `close`/`abort` have already removed the reader, so it is never called again.
    if getattr(transport, "_read_ready_cb", None) is not None:
        transport._read_ready_cb = _no_read  # type: ignore[attr-defined]


def _no_read() -> None:
    pass


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)
