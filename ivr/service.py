"""The service: shared services for every call, the FastAGI listener, HTTP, and a clean stop.

`ivr serve` runs `serve()`; `ivr demo` and the tests use `open_services()` and `Service` to
run the same thing in their own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import signal
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from ivr.backends.kimvoice import check_sandbox_use, open_kimvoice
from ivr.embedded_http import EmbeddedHttpServer
from ivr.errors import StoreError
from ivr.flow.call import Call
from ivr.flow.guard import SignInGuard
from ivr.flow.runner import ROUTES, run_call
from ivr.flow.services import Services, guard_limits
from ivr.install_key import install_key
from ivr.logging import get_logger
from ivr.settings import Settings
from ivr.store import SqliteStore
from ivr.transports.agi import FastAgiServer
from ivr.transports.ari import AriApp
from ivr.tts import TtsCache
from ivr.web import Metrics, create_app

log = get_logger("ivr.service")

HOUSEKEEPING_SECONDS = 3600


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    """KimVoice (or the embedded sandbox), the store and the TTS cache, closed on exit."""
    async with AsyncExitStack() as stack:
        kimvoice = await stack.enter_async_context(open_kimvoice(settings))
        store = await SqliteStore.open(settings.data_dir / "calls.db")
        stack.push_async_callback(store.close)
        guard = SignInGuard(store, install_key(settings.data_dir), guard_limits(settings))
        await guard.open()
        yield Services(kimvoice, store, guard, TtsCache.from_settings(settings), settings, sinks=[store.save])


class Service:
    """FastAGI and HTTP listeners over one set of services."""

    def __init__(self, settings: Settings, services: Services) -> None:
        self.settings = settings
        self.services = services
        self.metrics = Metrics(routes=tuple(ROUTES))
        services.sinks.append(self.metrics.observe)
        services.guard.on_engaged = self.metrics.guard_engaged_by
        self.agi = FastAgiServer(self._handle, settings.agi_host, settings.agi_port,
                                 env_timeout=settings.agi_env_timeout, allow=settings.agi_allow)
        self.ari = AriApp(
            self._handle, str(settings.ari_url), settings.ari_user, settings.ari_password.get_secret_value(),
            settings.ari_app, timeout=settings.ari_timeout, announce_input=settings.ari_announce_input,
        ) if settings.ari_url else None
        self._housekeeping: asyncio.Task[None] | None = None
        self.http = EmbeddedHttpServer(
            create_app(services.kimvoice, self.metrics, lambda: self.active,
                       store_healthy=services.store.healthy, media_allow=settings.media_allow,
                       health_timeout=settings.kimvoice_health_timeout, sandbox=settings.embedded_sandbox,
                       tts_dir=services.tts.directory, sounds_dir=settings.sounds_dir),
            settings.http_host, settings.http_port,
            max_connections=settings.http_max_connections, header_timeout=settings.http_header_timeout,
            allow=settings.http_allow,
        )

    @property
    def active(self) -> int:
        """Calls in progress, over FastAGI and ARI."""
        return self.agi.active + (self.ari.active if self.ari is not None else 0)

    async def start(self) -> None:
        await self.agi.start()
        if self.ari is not None:
            await self.ari.start()
        await self.http.start()
        self._housekeeping = asyncio.get_running_loop().create_task(self._keep_house())
        log.info("service.started", agi=f"{self.settings.agi_host}:{self.agi.port}", http=self.http.url)

    async def stop(self) -> None:
        """Drain: no new calls; calls in progress finish within `drain_seconds`."""
        log.info("service.draining", active=self.active, grace_s=self.settings.drain_seconds)
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
        if self.ari is not None:
            drain = self.settings.drain_seconds
            await asyncio.gather(self.agi.drain(drain), self.ari.drain(drain))
        else:
            await self.agi.drain(self.settings.drain_seconds)
        await self.http.stop()
        log.info("service.stopped")

    async def _keep_house(self) -> None:
        """Drop call records older than `record_days` and spent lockout rows, at start and hourly,
        so the disk does not fill."""
        while True:
            now = time.time()
            try:
                dropped = await self.services.store.purge(
                    records_before=now - self.settings.record_days * 86400,
                    lockouts_before=now - self.settings.lockout_window,
                )
            except StoreError as exc:
                log.error("service.purge_failed", error=str(exc))
            else:
                if dropped:
                    log.info("service.purged", records=dropped, older_than_days=self.settings.record_days)
            await asyncio.sleep(HOUSEKEEPING_SECONDS)

    async def _handle(self, call: Call) -> None:
        over = self.active > self.settings.max_calls
        self.metrics.active.inc()
        try:
            await run_call(call, self.services, refuse="over capacity" if over else None)
        finally:
            self.metrics.active.dec()


def raise_open_files_limit() -> None:
    """Raise the open-files soft limit to the hard one: every call and HTTP client holds a
    descriptor, and a distribution's default soft limit (often 1,024) is soon reached.

    Never fails: when the limit cannot be raised, the service runs with what it has.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:
            log.warning("service.open_files_limit", limit=soft, wanted=hard, error=str(exc))
            return
    log.info("service.open_files_limit", limit=hard)


async def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then drain. Refuses the embedded sandbox by accident
    (`check_sandbox_use`: `SettingsError`)."""
    check_sandbox_use(settings)
    raise_open_files_limit()
    async with open_services(settings) as services:
        service = Service(settings, services)
        await service.start()
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        await stopping.wait()
        await service.stop()
