"""The Kimoby sandbox on a real socket: embedded in our event loop, or on its own."""

from __future__ import annotations

from ivr.backends.kimoby.sandbox._app import create_app
from ivr.backends.kimoby.sandbox._knobs import KimobyKnobs
from ivr.backends.kimoby.sandbox._state import SANDBOX_API_KEY, SANDBOX_API_SECRET, KimobySandbox, seed_customer_lines
from ivr.embedded_http import EmbeddedHttpServer
from ivr.logging import get_logger

__all__ = ["KimobySandboxServer", "serve_kimoby_sandbox"]

log = get_logger("ivr.kimoby.sandbox")


class KimobySandboxServer(EmbeddedHttpServer):
    """A Kimoby sandbox listening on `host:port` (port 0: any free port) until `stop()`;
    `api_url` is its API root (`/v1` included), what `IVR_KIMOBY_URL` names."""

    def __init__(
        self, sandbox: KimobySandbox | None = None, host: str = "127.0.0.1", port: int = 0, *,
        log_requests: bool = False,
    ) -> None:
        self.sandbox = sandbox or KimobySandbox()
        super().__init__(create_app(self.sandbox, log_requests=log_requests), host, port)

    @property
    def api_url(self) -> str:
        return f"{self.url}/v1"

    async def stop(self) -> None:
        await self.sandbox.aclose()
        await super().stop()

    async def __aenter__(self) -> KimobySandboxServer:
        await self.start()
        return self


async def serve_kimoby_sandbox(
    host: str, port: int, *, api_key: str = SANDBOX_API_KEY, api_secret: str = SANDBOX_API_SECRET,
    knobs: KimobyKnobs | None = None,
) -> None:
    """Run a Kimoby sandbox until cancelled (what `ivr kimoby-sandbox` runs)."""
    server = KimobySandboxServer(KimobySandbox(knobs, api_key=api_key, api_secret=api_secret), host, port,
                                 log_requests=True)
    await server.start()
    log.info("kimoby_sandbox.listening", url=server.api_url, api_key=api_key, customers=seed_customer_lines())
    try:
        await server.wait()
    finally:
        await server.stop()
