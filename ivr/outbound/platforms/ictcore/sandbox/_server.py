"""The ICTCore sandbox on a real socket: embedded in our event loop, or on its own."""

from __future__ import annotations

from ivr.embedded_http import EmbeddedHttpServer
from ivr.logging import get_logger
from ivr.outbound.platforms.ictcore.sandbox._app import create_app
from ivr.outbound.platforms.ictcore.sandbox._state import (
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
    IctCoreKnobs,
    IctCoreSandbox,
)

log = get_logger("ivr.outbound.ictcore.sandbox")


class IctCoreSandboxServer(EmbeddedHttpServer):
    """An ICTCore sandbox listening on `host:port` (port 0: any free port) until `stop()`;
    `url` is its API root."""

    def __init__(
        self, sandbox: IctCoreSandbox | None = None, host: str = "127.0.0.1", port: int = 0, *,
        log_requests: bool = False,
    ) -> None:
        self.sandbox = sandbox or IctCoreSandbox()
        super().__init__(create_app(self.sandbox, log_requests=log_requests), host, port)

    async def stop(self) -> None:
        self.sandbox.close()
        await super().stop()

    async def __aenter__(self) -> IctCoreSandboxServer:
        await self.start()
        return self


async def serve_ictcore_sandbox(
    host: str, port: int, *, username: str = SANDBOX_USERNAME, password: str = SANDBOX_PASSWORD,
    knobs: IctCoreKnobs | None = None,
) -> None:
    """Run an ICTCore sandbox until cancelled (what `ivr ictcore-sandbox` runs)."""
    server = IctCoreSandboxServer(IctCoreSandbox(knobs, users={username: password}), host, port, log_requests=True)
    await server.start()
    log.info("ictcore_sandbox.listening", url=server.url, username=username)
    try:
        await server.wait()
    finally:
        await server.stop()
