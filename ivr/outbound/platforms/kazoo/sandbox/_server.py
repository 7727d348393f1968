"""The Kazoo sandbox on a real socket: embedded in our event loop, or on its own."""

from __future__ import annotations

from ivr.embedded_http import EmbeddedHttpServer
from ivr.logging import get_logger
from ivr.outbound.platforms.kazoo.sandbox._app import create_app
from ivr.outbound.platforms.kazoo.sandbox._state import (
    SANDBOX_ACCOUNT_ID,
    SANDBOX_ACCOUNT_NAME,
    SANDBOX_API_KEY,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
    KazooKnobs,
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


async def serve_kazoo_sandbox(
    host: str, port: int, *, username: str = SANDBOX_USERNAME, password: str = SANDBOX_PASSWORD,
    account_name: str = SANDBOX_ACCOUNT_NAME, api_key: str = SANDBOX_API_KEY, knobs: KazooKnobs | None = None,
) -> None:
    """Run a Kazoo sandbox until cancelled (what `ivr kazoo-sandbox` runs)."""
    sandbox = KazooSandbox(knobs, username=username, password=password, account_name=account_name,
                           api_key=api_key)
    server = KazooSandboxServer(sandbox, host, port, log_requests=True)
    await server.start()
    log.info("kazoo_sandbox.listening", url=server.crossbar_url, account_id=SANDBOX_ACCOUNT_ID,
             account_name=account_name, username=username)
    try:
        await server.wait()
    finally:
        await server.stop()
