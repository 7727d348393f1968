"""A phone line over Kazoo Pivot on loopback, for the Pivot tests: the KimVoice sandbox, the flow
with real services, and the Pivot routes (with `/media`) on a real HTTP server, called by the
simulated Kazoo (`place_pivot_call`).

The service is put together by hand here (the lead wires `PivotApp` into `ivr.service`): a
Starlette app with `PivotApp.routes` and `media_routes`, whose handler runs `run_call` with the
services `open_services` builds (refusing calls past `max_calls`), as the service's own handler does.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from ivr.backends.kimvoice.sandbox import Knobs, Sandbox, SandboxServer
from ivr.embedded_http import EmbeddedHttpServer
from ivr.flow.call import Call
from ivr.flow.runner import run_call
from ivr.flow.services import Services
from ivr.records import CallRecord
from ivr.service import open_services
from ivr.settings import Settings, load_settings
from ivr.sim import PivotCallResult, ScriptedCaller, SoundLibrary, place_pivot_call
from ivr.transports.pivot import PivotApp
from ivr.tts import TtsCache, media_routes
from support.line import CATALOG, ENTRY_TIMEOUT_MS

SECRET = "kazoo-pivot-secret-0123456789"
_numbers = itertools.count(1)


class PivotLine:
    """The service on loopback, called through the simulated Kazoo."""

    def __init__(self, sandbox: Sandbox, settings: Settings, services: Services, pivot: PivotApp, url: str) -> None:
        self.sandbox, self.settings, self.services, self.pivot, self.url = sandbox, settings, services, pivot, url
        self.sounds = SoundLibrary(CATALOG, TtsCache(settings.data_dir / "tts"))
        self.handled: list[str] = []

    async def call(
        self, keys: str = "", route: str = "keybox", *, caller: ScriptedCaller | None = None,
        caller_id: str | None = None, secret: str | None = SECRET, **kwargs: Any,
    ) -> PivotCallResult:
        caller = caller or ScriptedCaller(keys)
        caller_id = caller_id or f"+1555557{next(_numbers) % 10000:04d}"
        return await place_pivot_call(self.url, route, caller=caller, sounds=self.sounds, secret=secret,
                                      caller_id=caller_id, timeout=30, **kwargs)

    async def record(self, call_id: str, timeout: float = 10.0) -> CallRecord:
        """The call's record, once its flow has ended."""
        await self.pivot.wait_call(call_id, timeout)
        record = await self.services.records.get(call_id)
        assert record is not None, "every call leaves a record"
        return record

    def backend_requests(self) -> int:
        return sum(self.sandbox.requests.values()) - self.sandbox.requests["LogOn"]


MakePivotLine = Callable[..., AbstractAsyncContextManager[PivotLine]]


@asynccontextmanager
async def running_pivot_line(
    data_dir: Path, knobs: Knobs | None = None, *, pivot: dict[str, Any] | None = None, **settings: Any,
) -> AsyncIterator[PivotLine]:
    sandbox = Sandbox(knobs or Knobs())
    server = SandboxServer(sandbox)
    await server.start()
    try:
        config = load_settings(**{
            "kimvoice_url": server.url, "data_dir": data_dir, "agi_port": 0, "http_port": 0,
            "kimvoice_timeout": 2.0, "please_wait_after": 1.5, "log_level": "warning",
            "entry_timeout_ms": ENTRY_TIMEOUT_MS, **settings,
        })
        async with open_services(config) as services:
            handled: list[str] = []

            options = {"hangup_margin": 1.0, "play_allowance": 0.0, **(pivot or {})}
            max_calls = int(options.get("max_calls", 100))

            async def handle(call: Call) -> None:
                """As the service's: past `max_calls` the call is refused, and recorded."""
                handled.append(call.call_id)
                await run_call(call, services, refuse="over capacity" if app.active > max_calls else None)

            http: EmbeddedHttpServer | None = None
            # The URL is known once the server listens (port 0): the app asks for it per call.
            app = PivotApp(handle, public_url=lambda: http.url if http else "", secret=SECRET, tts=services.tts,
                           **options)
            http = EmbeddedHttpServer(Starlette(routes=[
                *app.routes, *media_routes(services.tts.directory, config.sounds_dir, config.media_allow)]))
            url = await http.start()
            line = PivotLine(sandbox, config, services, app, url)
            line.handled = handled
            try:
                yield line
            finally:
                await app.drain(1.0)
                await http.stop()
    finally:
        await server.stop()
