"""The Kazoo sandbox on a real socket: embedded in our event loop, or on its own."""

from __future__ import annotations

from ivr.embedded_http import EmbeddedHttpServer
from ivr.logging import get_logger
from ivr.outbound.platforms.kazoo.sandbox._app import create_app
from ivr.outbound.platforms.kazoo.sandbox._state import (
    KazooSandbox,
)

log = get_logger("ivr.outbound.kazoo.sandbox")


class KazooSandboxServer(EmbeddedHttpServer):
    """A Kazoo sandbox listening on `host:port` (port 0: any free port) until `stop()`;
    `crossbar_url` is its crossbar URL (`/v2` included), what `IVR_KAZOO_URL` names."""

    def __init__(
        self, sandbox: KazooSandbox | None = None, host: str = "127.0.0.1", port: int = 0, *,
        log_requests: bool = False,
    ) -> None:
        self.sandbox = sandbox or KazooSandbox()
        super().__init__(create_app(self.sandbox, log_requests=log_requests), host, port)

    @property
    def crossbar_url(self) -> str:
        return f"{self.url}/v2"

    async def stop(self) -> None:
        self.sandbox.close()
        await super().stop()

    async def __aenter__(self) -> KazooSandboxServer:
        await self.start()
        return self
