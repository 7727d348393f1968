"""The sandbox on a real loopback socket, embedded in our event loop or on its own."""

from __future__ import annotations

from ivr.backends.kimvoice.sandbox._app import create_app
from ivr.backends.kimvoice.sandbox._service import Sandbox
from ivr.embedded_http import EmbeddedHttpServer


class SandboxServer(EmbeddedHttpServer):
    """A sandbox listening on `host:port` (port 0: any free port) until `stop()`.

    On `stop()`, answers still waiting out the latency knob are answered 503 at once.
    """

    def __init__(
        self, sandbox: Sandbox | None = None, host: str = "127.0.0.1", port: int = 0, *, log_requests: bool = False
    ) -> None:
        self.sandbox = sandbox or Sandbox()
        super().__init__(create_app(self.sandbox, log_requests=log_requests), host, port)

    async def stop(self) -> None:
        self.sandbox.stopping.set()
        await super().stop()

    async def __aenter__(self) -> SandboxServer:
        await self.start()
        return self
