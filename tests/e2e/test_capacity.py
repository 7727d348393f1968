"""Past IVR_MAX_CALLS calls in progress, a new caller hears system-unavailable at once."""

from __future__ import annotations

import asyncio

from support.line import MakeLine

from ivr.records import Outcome
from ivr.sim import InputRequest, ScriptedCaller


class HoldingCaller(ScriptedCaller):
    """Stays on the line, thinking at the first question, until released."""

    def __init__(self) -> None:
        super().__init__("123456#2580#19")
        self.waiting = asyncio.Event()
        self.release = asyncio.Event()

    async def keys_for(self, request: InputRequest) -> str | None:
        self.waiting.set()
        await self.release.wait()
        return await super().keys_for(request)


async def test_a_call_over_capacity_is_refused_without_asking_kimvoice(make_line: MakeLine) -> None:
    async with make_line(max_calls=1, operator="") as line:
        holder = HoldingCaller()
        first = asyncio.create_task(line.call(caller=holder))
        await holder.waiting.wait()
        health_checks = line.requests("HealthCheck")

        refused = await line.call("123456#2580#19")
        holder.release.set()
        held = await first

    assert refused.prompts == ["system-unavailable", "goodbye"]
    assert refused.record.outcome is Outcome.UNAVAILABLE
    assert refused.record.detail == "over capacity"
    assert refused.record.backend == []
    assert line.requests("HealthCheck") == health_checks
    assert held.record.outcome is Outcome.UPDATE_CODE_READ
