"""The Codelocks sandbox on a real socket: embedded in our event loop, or on its own."""

from __future__ import annotations

from ivr.backends.codelocks.sandbox._app import create_app
from ivr.backends.codelocks.sandbox._state import SANDBOX_API_KEY, CodelocksKnobs, CodelocksSandbox
from ivr.embedded_http import EmbeddedHttpServer
from ivr.logging import get_logger

log = get_logger("ivr.backends.codelocks.sandbox")


class CodelocksSandboxServer(EmbeddedHttpServer):
    """A Codelocks sandbox listening on `host:port` (port 0: any free port) until `stop()`;
    `url` is its API root, what `IVR_CODELOCKS_URL` names."""

    def __init__(
        self, sandbox: CodelocksSandbox | None = None, host: str = "127.0.0.1", port: int = 0, *,
        log_requests: bool = False,
    ) -> None:
        self.sandbox = sandbox or CodelocksSandbox()
        super().__init__(create_app(self.sandbox, log_requests=log_requests), host, port)

    async def stop(self) -> None:
        self.sandbox.close()
        await super().stop()

    async def __aenter__(self) -> CodelocksSandboxServer:
        await self.start()
        return self


async def serve_codelocks_sandbox(
    host: str, port: int, *, api_key: str = SANDBOX_API_KEY, knobs: CodelocksKnobs | None = None,
) -> None:
    """Run a Codelocks sandbox until cancelled (what `ivr codelocks-sandbox` runs)."""
    server = CodelocksSandboxServer(CodelocksSandbox(knobs, api_key=api_key), host, port, log_requests=True)
    await server.start()
    log.info("codelocks_sandbox.listening", url=server.url, netcode_remaining=server.sandbox.knobs.netcode_remaining)
    try:
        await server.wait()
    finally:
        await server.stop()
