"""A whole phone line on loopback, for the end-to-end tests: the KimVoice sandbox, the service, the simulated Asterisk.

`line` places calls over a real FastAGI socket and returns what the caller heard and the
call's record, as the service stored it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ivr.flow.prompts import PromptCatalog, default_prompts_dir
from ivr.flow.records import CallRecord
from ivr.kimvoice.sandbox import Knobs, Sandbox, SandboxServer
from ivr.service import Service, open_services
from ivr.settings import Settings, load_settings
from ivr.sim import CallResult, Event, ScriptedCaller, SoundLibrary, Transcript, place_call
from ivr.tts import TtsCache

CATALOG = PromptCatalog.load(default_prompts_dir())


def today() -> str:
    return datetime.now(UTC).date().isoformat()


@dataclass
class Placed:
    """One finished call: what the caller heard, and the record the service kept."""

    result: CallResult
    record: CallRecord

    @property
    def heard(self) -> Transcript:
        return self.result.transcript

    @property
    def prompts(self) -> list[str]:
        return self.heard.prompts


class ReactingCaller(ScriptedCaller):
    """A scripted caller that also runs `react` when it hears a given prompt (to change the
    sandbox's behaviour mid-call, as an outage would)."""

    def __init__(self, keys: str, on_prompt: str, react: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(keys, **kwargs)
        self._on_prompt, self._react = on_prompt, react

    def observe(self, event: Event) -> None:
        super().observe(event)
        if event.kind == "prompt" and event.value == self._on_prompt:
            self._react()
            self._on_prompt = ""


class Line:
    def __init__(self, sandbox: Sandbox, settings: Settings, service: Service) -> None:
        self.sandbox = sandbox
        self.settings = settings
        self.service = service
        self.sounds = SoundLibrary(CATALOG, TtsCache(settings.data_dir / "tts"))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.service.agi.port}"

    async def call(
        self, keys: str = "", route: str = "keybox", *, hangup_on: str | None = None,
        caller: ScriptedCaller | None = None, **kwargs: Any,
    ) -> Placed:
        caller = caller or ScriptedCaller(keys, hangup_on=hangup_on)
        result = await place_call(self.address, route, caller=caller, sounds=self.sounds, timeout=30, **kwargs)
        record = await self.service.services.records.get(result.unique_id)
        assert record is not None, "every call leaves a record"
        assert result.closed_by_service, "the service closes the socket when the call ends"
        return Placed(result, record)

    def requests(self, method: str) -> int:
        return self.sandbox.requests[method]


MakeLine = Callable[..., Awaitable[Line]]


@asynccontextmanager
async def running_line(data_dir: Path, knobs: Knobs | None = None, **settings: Any) -> AsyncIterator[Line]:
    sandbox = Sandbox(knobs or Knobs())
    async with SandboxServer(sandbox) as server:
        config = load_settings(**{
            "kimvoice_url": server.url, "data_dir": data_dir, "agi_port": 0, "http_port": 0,
            "kimvoice_timeout": 2.0, "please_wait_after": 1.5, "log_level": "warning", **settings,
        })
        async with open_services(config) as services:
            service = Service(config, services)
            await service.start()
            try:
                yield Line(sandbox, config, service)
            finally:
                await service.stop()


