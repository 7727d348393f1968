"""Kazoo's simulated media side: a real Kazoo sandbox whose quickcalls reach a pivot callflow, played
against the service's real pivot endpoint (`support.pivot_line`), and what the callee heard."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.line import CATALOG
from support.pivot_line import SECRET, PivotLine, running_pivot_line

from ivr.outbound import Outbound
from ivr.outbound.platforms.kazoo import KazooClient, pivot_flow
from ivr.outbound.platforms.kazoo.sandbox import (
    AGENT_DEVICE_ID,
    SANDBOX_API_KEY,
    CallflowCall,
    KazooSandboxServer,
)
from ivr.records import Outcome
from ivr.sim import InputRequest, KazooMediaSide, ScriptedCaller

NUMBER = "5550900"
MESSAGE = "Your showing at 12 Elm Street is confirmed."


@dataclass
class Kazoo:
    server: KazooSandboxServer
    client: KazooClient
    line: PivotLine
    heard: Path

    async def callflow(self, route: str, number: str = NUMBER, **data: str) -> None:
        flow = pivot_flow(f"{self.line.url}/kazoo/pivot/{route}?secret={SECRET}")
        flow["data"].update(data)
        await self.client.create_callflow(name=f"keybox {route}", numbers=[number], flow=flow)

    async def notice(self, code: str | None = "4384341") -> str:
        """A job the `announce` route can speak (no runner here: it stays queued)."""
        job, _ = await Outbound(self.line.services.store, self.line.settings).submit(  # type: ignore[arg-type]
            {"kind": "notice", "to": "5551234", "message": MESSAGE, **({"code": code} if code else {})})
        return job.id

    async def quickcall(self, job: str, number: str = NUMBER) -> None:
        """The agent's SIP device quickcalled to `number`, carrying the job as Kazoo's platform does."""
        await self.client.quickcall("devices", AGENT_DEVICE_ID, number,
                                    variables={"job": job, "attempt": f"{job}-1", "keybox_job_id": f"{job}-1"})


@pytest.fixture
async def kazoo(tmp_path: Path) -> AsyncIterator[Kazoo]:
    async with running_pivot_line(tmp_path) as line, KazooSandboxServer() as server:
        client = KazooClient(server.crossbar_url, api_key=SANDBOX_API_KEY, timeout=2.0)
        try:
            yield Kazoo(server, client, line, tmp_path / "heard")
        finally:
            await client.aclose()


def media(kazoo: Kazoo, **options: object) -> KazooMediaSide:
    return KazooMediaSide(kazoo.server.sandbox, sounds=kazoo.line.sounds, catalog=CATALOG, heard_dir=kazoo.heard,
                          **options)  # type: ignore[arg-type]


async def test_a_notice_callflow_is_played_to_a_callee_who_listens(kazoo: Kazoo) -> None:
    await kazoo.callflow("announce")
    job = await kazoo.notice()
    async with media(kazoo) as side:
        await kazoo.quickcall(job)
        await kazoo.server.sandbox.wait_calls()
        [result] = side.results
    record = await kazoo.line.record(result.call_id)
    heard = (kazoo.heard / f"{job}.txt").read_text()

    assert result.ended_by == "service" and result.failure is None
    assert record.route == "announce" and record.outcome is Outcome.ANNOUNCED
    assert record.attempt_id == f"{job}-1", "the quickcall's variables reached the announce route"
    assert result.call_id.endswith("-quickcall"), "the pivot call is the answered quickcall leg"
    assert MESSAGE in heard and "[digits] *****41" in heard and "4384341" not in heard
    assert "[silence]" in heard, "the callee pressed nothing at the menu"
    [cdr] = [c for c in kazoo.server.sandbox.cdrs.values() if c["call_id"] == result.call_id]
    assert cdr["hangup_cause"] == "NORMAL_CLEARING" and cdr["custom_application_vars"]["job"] == job
    assert kazoo.server.sandbox.channels() == []


async def test_the_callee_types_its_keys(kazoo: Kazoo) -> None:
    await kazoo.callflow("keybox")
    async with media(kazoo, keys="123456#2580#19") as side:
        await kazoo.quickcall("J1")
        await kazoo.server.sandbox.wait_calls()
        [result] = side.results
    record = await kazoo.line.record(result.call_id)
    heard = (kazoo.heard / "J1.txt").read_text()
    assert record.outcome is Outcome.UPDATE_CODE_READ
    assert "[pressed] 123456#" in heard
    [code] = record.codes
    assert code in heard, "the code heard is masked as the record keeps it"


async def test_a_callflow_that_is_not_a_kazoo_get_pivot_gets_the_sandboxs_default(kazoo: Kazoo) -> None:
    await kazoo.client.create_callflow(name="voicemail", numbers=["5550901"],
                                       flow={"module": "voicemail", "data": {}, "children": {}})
    await kazoo.callflow("announce", "5550902", method="post")
    await kazoo.callflow("announce", "5550903", req_format="twiml")
    async with media(kazoo) as side:
        for number in ("5550901", "5550902", "5550903"):
            await kazoo.quickcall("J2", number)
        await kazoo.server.sandbox.wait_calls()
    assert list(side.results) == [] and kazoo.line.handled == []
    assert not kazoo.heard.exists()


class Holding(ScriptedCaller):
    """A callee who never answers a question: their call lasts until it is ended from outside."""

    async def keys_for(self, request: InputRequest) -> str | None:
        await asyncio.Event().wait()
        return None


async def test_calls_past_the_cap_get_the_default_and_close_ends_those_played(kazoo: Kazoo) -> None:
    await kazoo.callflow("keybox")
    side = media(kazoo, callee=lambda _: Holding(), max_calls=1).attach()
    reached: list[CallflowCall] = []
    hook = kazoo.server.sandbox.on_callflow_call

    def counting(call: CallflowCall) -> bool | None:
        reached.append(call)
        return hook(call) if hook else None

    kazoo.server.sandbox.on_callflow_call = counting
    await kazoo.quickcall("J3")
    await kazoo.quickcall("J4")
    while len(reached) < 2 or side.active < 1:
        await kazoo.server.sandbox.wait_next_change()
    while len(kazoo.server.sandbox.channels()) > 1:  # the second call talks its default seconds
        await kazoo.server.sandbox.wait_next_change()
    assert side.active == 1
    [held] = kazoo.server.sandbox.channels()
    kazoo.server.sandbox.on_callflow_call = side.on_callflow_call
    await side.close()
    await kazoo.server.sandbox.wait_calls()
    assert side.active == 0 and kazoo.server.sandbox.on_callflow_call is None
    assert kazoo.server.sandbox.channels() == []
    [cdr] = [c for c in kazoo.server.sandbox.cdrs.values() if c["call_id"] == held["uuid"]]
    assert cdr["hangup_cause"] == "NORMAL_CLEARING"


def test_max_calls_is_at_least_one() -> None:
    from ivr.outbound.platforms.kazoo.sandbox import KazooSandbox
    from ivr.sim import SoundLibrary

    with pytest.raises(ValueError, match="max_calls"):
        KazooMediaSide(KazooSandbox(), sounds=SoundLibrary(CATALOG), max_calls=0)
