"""Serve the sandbox on a real loopback socket, embedded in our event loop or on its own."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn

from ivr.kimvoice.sandbox._app import create_app
from ivr.kimvoice.sandbox._service import Sandbox


class _EmbeddedServer(uvicorn.Server):
    # Signals belong to the program that embeds the sandbox, not to uvicorn.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class SandboxServer:
    """A sandbox listening on `host:port` (port 0: any free port) until `stop()`.

    The socket is bound and listening before `start()` returns, so a client may connect at once.
    """

    def __init__(
        self, sandbox: Sandbox | None = None, host: str = "127.0.0.1", port: int = 0, *, log_requests: bool = False
    ) -> None:
        self.sandbox = sandbox or Sandbox()
        self._host, self._port = host, port
        self._log_requests = log_requests
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
            create_app(self.sandbox, log_requests=self._log_requests),
            log_config=None, access_log=False, lifespan="off", timeout_keep_alive=30,
        )
        self._server = _EmbeddedServer(config)
        self._task = asyncio.get_running_loop().create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                await self._task
                raise RuntimeError("the sandbox server stopped while starting")
            await asyncio.sleep(0.005)
        return self.url

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        # A stand-in owes nobody a graceful drain: answers still sleeping on `latency` are cut.
        self._server.should_exit = self._server.force_exit = True
        await self._task
        self._server = self._task = None

    async def serve_forever(self) -> None:
        """Run until the task is cancelled, then shut down cleanly."""
        assert self._task is not None, "start() first"
        try:
            await asyncio.shield(self._task)
        finally:
            await self.stop()

    async def __aenter__(self) -> SandboxServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
