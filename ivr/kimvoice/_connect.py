"""A ready client for the configured KimVoice, starting the embedded sandbox when none is set."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from ivr.kimvoice._client import KimVoiceClient
from ivr.logging import get_logger
from ivr.settings import Settings

log = get_logger("ivr.kimvoice")


@asynccontextmanager
async def open_kimvoice(settings: Settings) -> AsyncIterator[KimVoiceClient]:
    """Yield a client for `settings.kimvoice_url`; with none set, for an embedded sandbox."""
    async with AsyncExitStack() as stack:
        url = str(settings.kimvoice_url) if settings.kimvoice_url else await _embedded_sandbox(settings, stack)
        client = KimVoiceClient(
            url,
            settings.kimvoice_client_id,
            settings.kimvoice_client_secret.get_secret_value(),
            timeout=settings.kimvoice_timeout,
        )
        stack.push_async_callback(client.aclose)
        yield client


async def _embedded_sandbox(settings: Settings, stack: AsyncExitStack) -> str:
    from ivr.kimvoice.sandbox import Knobs, Sandbox, SandboxServer  # only when embedded

    knobs = Knobs(
        operational_mode=settings.sandbox_mode,
        latency=settings.sandbox_latency,
        failure_rate=settings.sandbox_failure_rate,
        token_lifetime=settings.sandbox_token_lifetime,
    )
    server = await stack.enter_async_context(SandboxServer(Sandbox(knobs)))
    log.info("kimvoice.embedded_sandbox", url=server.url)
    return server.url
