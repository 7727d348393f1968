"""A whole phone line on loopback, for the end-to-end tests: the KimVoice sandbox, the service, and
the simulated Asterisk or Kazoo.

`line` places calls over one of the three transports the service offers — a real FastAGI socket
(``agi``), ARI, its HTTP and events WebSocket (``ari``), or Kazoo's pivot requests to the service's
own HTTP listener (``pivot``) — and returns what the caller heard and the call's record, as the
service stored it. The branch tests run over all three.

The entry timeout is the shortest the settings allow (1 s): over ARI and Pivot a caller's silence
really has to time out in the service (the simulated FastAGI channel answers GET DATA's timeout at
once). Over Pivot the sounds play instantly (no play allowance) and a caller who stops asking is
taken as gone the smallest margin past a question's time. Each call gets a caller id of its own
unless given one, so lockouts by calling number carry over only where a test asks for it.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

from ivr.backends.kimvoice.sandbox import Knobs, Sandbox, SandboxServer
from ivr.catalog import PromptCatalog, default_prompts_dir
from ivr.records import CallRecord
from ivr.service import Service, open_services
from ivr.settings import Settings, load_settings
from ivr.sim import (
    AriCallResult,
    CallResult,
    Event,
    PivotCallResult,
    ScriptedCaller,
    SimulatedAri,
    SoundLibrary,
    Transcript,
    place_ari_call,
    place_call,
    place_pivot_call,
)
from ivr.tts import TtsCache

CATALOG = PromptCatalog.load(default_prompts_dir())

Transport = Literal["agi", "ari", "pivot"]
TRANSPORTS: tuple[Transport, ...] = ("agi", "ari", "pivot")
ENTRY_TIMEOUT_MS = 1000
PIVOT_SECRET = "e2e-kazoo-pivot-secret-0123456789"
PIVOT_MARGIN = 0.5
"""Seconds past a question's time after which a pivot call nobody resumed is over: the least allowed."""
AGENTS_CALLFLOW = "a9e1b7c3d5f70123456789abcdef0123"
"""The Kazoo callflow a transfer over Pivot goes to (`IVR_KAZOO_AGENTS_CALLFLOW`)."""


def today() -> str:
    return datetime.now(UTC).date().isoformat()


@dataclass
class Placed:
    """One finished call: what the caller heard, and the record the service kept.

    `result` is the transport's own account of the call; `agi_result` / `ari_result` /
    `pivot_result` give it typed, or None over the other transports (for the facts only one
    transport can show).
    """

    result: CallResult | AriCallResult | PivotCallResult
    record: CallRecord

    @property
    def heard(self) -> Transcript:
        return self.result.transcript

    @property
    def prompts(self) -> list[str]:
        return self.heard.prompts

    @property
    def agi_result(self) -> CallResult | None:
        return self.result if isinstance(self.result, CallResult) else None

    @property
    def ari_result(self) -> AriCallResult | None:
        return self.result if isinstance(self.result, AriCallResult) else None

    @property
    def pivot_result(self) -> PivotCallResult | None:
        return self.result if isinstance(self.result, PivotCallResult) else None


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


_numbers = itertools.count(1)


class Line:
    """The service on loopback, called over `transport`; `ari` is the simulated Asterisk's ARI
    (None over FastAGI and Pivot)."""

    def __init__(
        self, transport: Transport, sandbox: Sandbox, settings: Settings, service: Service,
        ari: SimulatedAri | None = None,
    ) -> None:
        self.transport = transport
        self.sandbox = sandbox
        self.settings = settings
        self.service = service
        self._ari = ari
        self._sounds = SoundLibrary(CATALOG, TtsCache(settings.data_dir / "tts"))

    @property
    def ari(self) -> SimulatedAri:
        assert self._ari is not None, "an ARI line"
        return self._ari

    @property
    def sounds(self) -> SoundLibrary:
        """The sounds the simulated Asterisk has (replace them to make some go missing)."""
        return self._ari.sounds if self._ari is not None else self._sounds

    @sounds.setter
    def sounds(self, sounds: SoundLibrary) -> None:
        if self._ari is not None:
            self._ari.sounds = sounds
        self._sounds = sounds

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.service.agi.port}"

    @property
    def agents(self) -> str:
        """Where a transfer to an agent goes: the dialplan's operator application, or over Pivot
        the Kazoo callflow (Kazoo has no dialplan applications)."""
        return self.settings.kazoo_agents_callflow if self.transport == "pivot" else self.settings.operator

    async def call(
        self, keys: str = "", route: str | None = "keybox", *, hangup_on: str | None = None,
        caller: ScriptedCaller | None = None, query: Mapping[str, str] | None = None,
        caller_id: str | None = None, **kwargs: Any,
    ) -> Placed:
        """A call on `route` (`query`: its arguments, ``keybox?job=1``); `route` None is Stasis()
        with no route, over ARI only."""
        caller = caller or ScriptedCaller(keys, hangup_on=hangup_on)
        caller_id = caller_id or f"+1555556{next(_numbers) % 10000:04d}"
        result: CallResult | AriCallResult | PivotCallResult
        if self.transport == "pivot":
            assert route is not None, "a pivot URL names its route"
            pivot = await place_pivot_call(self.service.http.url, route, secret=PIVOT_SECRET, query=query,
                                           caller=caller, sounds=self._sounds, caller_id=caller_id, timeout=30,
                                           **kwargs)
            assert pivot.ended_by is not None and pivot.ended_by != "gave_up", "the call ended"
            await self.service.pivot.wait_call(pivot.call_id, timeout=20)  # the flow has ended
            result = pivot
        elif self._ari is None:
            assert route is not None, "a FastAGI call has a script"
            agi = await place_call(self.address, route, caller=caller, sounds=self._sounds, timeout=30,
                                   query=query, caller_id=caller_id, **kwargs)
            assert agi.closed_by_service, "the service closes the socket when the call ends"
            result = agi
        else:
            if query:
                route = f"{route}?{urlencode(query)}"
            ari = await place_ari_call(self._ari, route, caller=caller, timeout=20, caller_id=caller_id, **kwargs)
            assert ari.ended_by is not None, "the call ended"
            assert self.service.ari is not None
            await self.service.ari.wait_call(ari.channel_id, timeout=10)  # the flow has ended
            result = ari
        record = await self.service.services.records.get(result.unique_id)
        assert record is not None, "every call leaves a record"
        return Placed(result, record)

    def requests(self, method: str) -> int:
        return self.sandbox.requests[method]

    def backend_requests(self) -> int:
        """KimVoice requests so far, log-ons aside."""
        return sum(self.sandbox.requests.values()) - self.sandbox.requests["LogOn"]


def stopping(server: SandboxServer, ari: SimulatedAri | None) -> list[Awaitable[None]]:
    return [server.stop(), *([ari.stop()] if ari is not None else [])]


MakeLine = Callable[..., AbstractAsyncContextManager[Line]]


@asynccontextmanager
async def running_line(
    data_dir: Path, knobs: Knobs | None = None, *, transport: Transport = "agi", playback_seconds: float = 0.0,
    **settings: Any,
) -> AsyncIterator[Line]:
    """The sandbox (with `knobs`), the service (with `settings`) and, over ARI, the simulated ARI
    (each playback lasting `playback_seconds`); over Pivot, the service with a pivot secret and
    the agents' Kazoo callflow (the simulated Kazoo is placed per call)."""
    sandbox = Sandbox(knobs or Knobs())
    server = SandboxServer(sandbox)
    password = str(settings.pop("ari_password", "asterisk"))
    ari = None
    if transport == "ari":
        ari = SimulatedAri(SoundLibrary(CATALOG, TtsCache(data_dir / "tts")), password=password,
                           playback_seconds=playback_seconds)
        await asyncio.gather(server.start(), ari.start())
        # the simulated caller types only once the IvrInput event says the line waits for keys
        settings = {"ari_url": ari.url, "ari_user": "asterisk", "ari_announce_input": True, **settings}
    else:
        await server.start()
    if transport == "pivot":
        settings = {"kazoo_pivot_secret": PIVOT_SECRET, "kazoo_pivot_margin": PIVOT_MARGIN,
                    "kazoo_pivot_play_seconds": 0, "kazoo_agents_callflow": AGENTS_CALLFLOW, **settings}
    try:
        config = load_settings(**{
            "kimvoice_url": server.url, "data_dir": data_dir, "agi_port": 0, "http_port": 0,
            "kimvoice_timeout": 2.0, "please_wait_after": 1.5, "log_level": "warning",
            "entry_timeout_ms": ENTRY_TIMEOUT_MS, "ari_password": password, **settings,
        })
        async with open_services(config) as services:
            service = Service(config, services)
            await service.start()
            try:
                if service.ari is not None:
                    await service.ari.wait_connected(5)
                yield Line(transport, sandbox, config, service, ari)
            finally:
                # Each uvicorn takes a couple of ticks to stop: stop them together. The calls
                # are over; the service drains while the sandbox and Asterisk go.
                await asyncio.gather(service.stop(), *stopping(server, ari))
    finally:
        await asyncio.gather(*stopping(server, ari))  # stopped already, unless the service never ran
