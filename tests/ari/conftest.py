"""A whole phone line over ARI on loopback: the KimVoice sandbox, the service with its ARI
transport, and the simulated Asterisk's ARI (HTTP + WebSocket), as `support.line` is for FastAGI.

`ari_line` places a call into ``Stasis(keybox,<route>)`` and returns what the caller heard and
the record the service kept. The entry timeout is the shortest the settings allow (1 s): over
ARI a caller's silence really has to time out in the service.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from support.line import CATALOG

from ivr.flow.records import CallRecord
from ivr.kimvoice.sandbox import Knobs, Sandbox, SandboxServer
from ivr.service import Service, open_services
from ivr.settings import Settings, load_settings
from ivr.sim import AriCallResult, ScriptedCaller, SimulatedAri, SoundLibrary, Transcript, place_ari_call
from ivr.tts import TtsCache

ENTRY_TIMEOUT_MS = 1000


@dataclass
class AriPlaced:
    """One finished call: what the caller heard, and the record the service kept."""

    result: AriCallResult
    record: CallRecord

    @property
    def heard(self) -> Transcript:
        return self.result.transcript

    @property
    def prompts(self) -> list[str]:
        return self.heard.prompts


class AriLine:
    def __init__(self, sandbox: Sandbox, settings: Settings, service: Service, ari: SimulatedAri) -> None:
        self.sandbox = sandbox
        self.settings = settings
        self.service = service
        self.ari = ari
        self._numbers = itertools.count(1)

    async def call(
        self, keys: str = "", route: str | None = "keybox", *, hangup_on: str | None = None,
        caller: ScriptedCaller | None = None, **kwargs: Any,
    ) -> AriPlaced:
        caller = caller or ScriptedCaller(keys, hangup_on=hangup_on)
        kwargs.setdefault("caller_id", f"+1555556{next(self._numbers):04d}")
        result = await place_ari_call(self.ari, route, caller=caller, timeout=20, **kwargs)
        assert self.service.ari is not None
        await self.service.ari.wait_call(result.channel_id, timeout=10)  # the flow has ended
        record = await self.service.services.records.get(result.channel_id)
        assert record is not None, "every call leaves a record"
        assert result.ended_by is not None, "the call ended"
        return AriPlaced(result, record)

    def requests(self, method: str) -> int:
        return self.sandbox.requests[method]

    def backend_requests(self) -> int:
        """KimVoice requests so far, log-ons aside."""
        return sum(self.sandbox.requests.values()) - self.sandbox.requests["LogOn"]


@asynccontextmanager
async def running_ari_line(
    data_dir: Path, knobs: Knobs | None = None, *, playback_seconds: float = 0.0, **settings: Any,
) -> AsyncIterator[AriLine]:
    sandbox = Sandbox(knobs or Knobs())
    sounds = SoundLibrary(CATALOG, TtsCache(data_dir / "tts"))
    server = SandboxServer(sandbox)
    password = str(settings.pop("ari_password", "asterisk"))
    ari = SimulatedAri(sounds, password=password, playback_seconds=playback_seconds)
    await asyncio.gather(server.start(), ari.start())
    try:
        config = load_settings(**{
            "kimvoice_url": server.url, "data_dir": data_dir, "agi_port": 0, "http_port": 0,
            "kimvoice_timeout": 2.0, "please_wait_after": 1.5, "log_level": "warning",
            "entry_timeout_ms": ENTRY_TIMEOUT_MS,
            "ari_url": ari.url, "ari_user": "asterisk", "ari_password": password, **settings,
        })
        async with open_services(config) as services:
            service = Service(config, services)
            await service.start()
            try:
                assert service.ari is not None
                await service.ari.wait_connected(5)
                yield AriLine(sandbox, config, service, ari)
            finally:
                await service.stop()
    finally:
        await asyncio.gather(server.stop(), ari.stop())  # each uvicorn takes a tick to stop


MakeAriLine = Callable[..., AbstractAsyncContextManager[AriLine]]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ari_line(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AriLine]:
    """One line for a whole test module (its tests run in the module's event loop: mark the
    module with ``pytest.mark.asyncio(loop_scope="module")``). Each call gets a caller id of its
    own, so lockouts by calling number do not carry from one test to the next."""
    async with running_ari_line(tmp_path_factory.mktemp("ari-line")) as running:
        yield running


@pytest.fixture
def make_ari_line(tmp_path: Path) -> MakeAriLine:
    """`async with make_ari_line(knobs, operator="") as line:` for a line with other settings."""

    def make(knobs: Knobs | None = None, **settings: Any) -> AbstractAsyncContextManager[AriLine]:
        return running_ari_line(tmp_path, knobs, **settings)

    return make
