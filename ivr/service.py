"""The service: shared services for every call, the FastAGI listener, HTTP, and a clean stop.

`ivr serve` runs `serve()`; `ivr demo` and the tests use `open_services()` and `Service` to
run the same thing in their own event loop.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from ivr.agi import FastAgiServer
from ivr.ari import AriApp
from ivr.flow.call import Call
from ivr.flow.runner import run_call
from ivr.flow.services import Services
from ivr.kimvoice import open_kimvoice
from ivr.logging import get_logger
from ivr.settings import Settings
from ivr.store import SqliteStore
from ivr.tts import TtsCache
from ivr.web import EmbeddedHttpServer, Metrics, create_app

log = get_logger("ivr.service")


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    """KimVoice (or the embedded sandbox), the store and the TTS cache, closed on exit."""
    async with AsyncExitStack() as stack:
        kimvoice = await stack.enter_async_context(open_kimvoice(settings))
        store = await SqliteStore.open(settings.data_dir / "calls.db")
        stack.push_async_callback(store.close)
        services = Services(kimvoice, store, store, store, TtsCache.from_settings(settings), settings, sinks=[store.save])
        yield services


class Service:
    """FastAGI and HTTP listeners over one set of services."""

    def __init__(self, settings: Settings, services: Services) -> None:
        self.settings = settings
        self.services = services
        self.metrics = Metrics()
        services.sinks.append(self.metrics.observe)
        self.agi = FastAgiServer(self._handle, settings.agi_host, settings.agi_port)
        self.ari = AriApp(
            self._handle, str(settings.ari_url), settings.ari_user, settings.ari_password.get_secret_value(),
            settings.ari_app, timeout=settings.ari_timeout,
        ) if settings.ari_url else None
        self.http = EmbeddedHttpServer(
            create_app(services.kimvoice, self.metrics, lambda: self.active,
                       health_timeout=settings.kimvoice_health_timeout,
                       tts_dir=services.tts.directory, sounds_dir=settings.sounds_dir),
            settings.http_host, settings.http_port,
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
        log.info("service.started", agi=f"{self.settings.agi_host}:{self.agi.port}", http=self.http.url)

    async def stop(self) -> None:
        """Drain: no new calls; calls in progress finish within `drain_seconds`."""
        log.info("service.draining", active=self.active, grace_s=self.settings.drain_seconds)
        if self.ari is not None:
            await asyncio.gather(self.agi.drain(self.settings.drain_seconds), self.ari.drain(self.settings.drain_seconds))
        else:
            await self.agi.drain(self.settings.drain_seconds)
        await self.http.stop()
        log.info("service.stopped")

    async def _handle(self, call: Call) -> None:
        over = self.active > self.settings.max_calls
        self.metrics.active.inc()
        try:
            await run_call(call, self.services, refuse="over capacity" if over else None)
        finally:
            self.metrics.active.dec()


async def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then drain."""
    async with open_services(settings) as services:
        service = Service(settings, services)
        await service.start()
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        await stopping.wait()
        await service.stop()
