"""A ready client for the configured KimVoice, starting the embedded sandbox when none is set."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from ivr.backends.kimvoice._breaker import CircuitBreaker
from ivr.backends.kimvoice._client import KimVoiceClient
from ivr.backends.kimvoice._models import OperationalMode
from ivr.errors import SettingsError
from ivr.logging import get_logger
from ivr.netallow import is_loopback
from ivr.settings import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, Settings

log = get_logger("ivr.kimvoice")


def check_sandbox_use(settings: Settings) -> None:
    """For `ivr serve`: never answer real callers from the sandbox by accident, and say so loudly.

    The embedded sandbox (seeded test keys, its own credentials) is the default so that a
    newcomer's service works on one machine. With FastAGI or HTTP listening beyond loopback it
    would answer a real line: there it runs only when `IVR_KIMVOICE_URL=sandbox` names it, else
    `SettingsError`. In use, it is a warning at start (`kimvoice.sandbox_in_use`). A real
    KimVoice URL with the sandbox's default credentials is a warning too: the service starts
    (a sandbox run apart, as in compose, uses them) but KimVoice will refuse the log-on.
    """
    if settings.embedded_sandbox:
        exposed = [f"IVR_{name.upper()}={host}" for name, host in
                   (("agi_host", settings.agi_host), ("http_host", settings.http_host)) if not is_loopback(host)]
        if exposed and settings.kimvoice_url is None:
            raise SettingsError(
                f"IVR_KIMVOICE_URL is unset, so KimVoice would be the embedded sandbox and its test data, yet "
                f"{' and '.join(exposed)} reach{'es' if len(exposed) == 1 else ''} beyond loopback: set "
                "IVR_KIMVOICE_URL to the KimVoice URL, or IVR_KIMVOICE_URL=sandbox to serve the sandbox on purpose"
            )
        log.warning(
            "kimvoice.sandbox_in_use",
            reason="IVR_KIMVOICE_URL=sandbox" if settings.kimvoice_url else "IVR_KIMVOICE_URL is unset",
            effect="callers get the sandbox's seeded test keys and codes, never real ones",
        )
        return
    defaults = [variable for variable, default in (
        ("IVR_KIMVOICE_CLIENT_ID", settings.kimvoice_client_id == SANDBOX_CLIENT_ID),
        ("IVR_KIMVOICE_CLIENT_SECRET", settings.kimvoice_client_secret.get_secret_value() == SANDBOX_CLIENT_SECRET),
    ) if default]
    if defaults:
        log.warning("kimvoice.sandbox_credentials", variables=defaults,
                    effect="the sandbox's default credentials: a real KimVoice refuses them")


@asynccontextmanager
async def open_kimvoice(settings: Settings) -> AsyncIterator[KimVoiceClient]:
    """Yield a client for `settings.kimvoice_url`; unset or ``sandbox``, for an embedded sandbox."""
    async with AsyncExitStack() as stack:
        url = await _embedded_sandbox(settings, stack) if settings.embedded_sandbox else str(settings.kimvoice_url)
        client = KimVoiceClient(
            url,
            settings.kimvoice_client_id,
            settings.kimvoice_client_secret.get_secret_value(),
            timeout=settings.kimvoice_timeout,
            breaker=CircuitBreaker(open_seconds=settings.kimvoice_breaker_seconds),
        )
        stack.push_async_callback(client.aclose)
        yield client


async def _embedded_sandbox(settings: Settings, stack: AsyncExitStack) -> str:
    from ivr.backends.kimvoice.sandbox import Knobs, Sandbox, SandboxServer  # only when embedded

    knobs = Knobs(
        operational_mode=OperationalMode(settings.sandbox_mode),
        latency=settings.sandbox_latency,
        failure_rate=settings.sandbox_failure_rate,
        failure_status=settings.sandbox_failure_status,
        token_lifetime=settings.sandbox_token_lifetime,
    )
    server = await stack.enter_async_context(SandboxServer(Sandbox(knobs)))
    log.info("kimvoice.embedded_sandbox", url=server.url)
    return server.url
