"""A notice via Kazoo end to end: the service's runner and Kazoo platform against a Kazoo sandbox
whose media side (`ivr.sim.KazooMediaSide`) plays the callflow `ivr kazoo provision` made — a
pivot to the service's `announce` route — to a simulated key holder, over the service's real
HTTP listener."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.line import CATALOG, Line, running_line

from ivr.outbound import Job, JobState
from ivr.outbound.platforms.kazoo import KazooClient, provision_pivot
from ivr.outbound.platforms.kazoo.sandbox import (
    BUSY_NUMBER,
    SANDBOX_ACCOUNT_NAME,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
    CallflowCall,
    KazooKnobs,
    KazooSandbox,
    KazooSandboxServer,
)
from ivr.records import Outcome
from ivr.service import SIM_CALLEES
from ivr.sim import Caller, KazooMediaSide, ScriptedCaller, SoundLibrary
from ivr.tts import TtsCache

SECRET = "e2e-kazoo-pivot-secret-0042"
NOTICE_NUMBER = "5550900"
NOTICE = {"kind": "notice", "via": "kazoo", "to": "5551234", "message": "Your showing at 12 Elm Street is confirmed."}


@dataclass
class KazooLine:
    line: Line
    sandbox: KazooSandbox
    media: KazooMediaSide
    data_dir: Path

    async def final(self, job_id: str, timeout: float = 20.0) -> Job:
        async with asyncio.timeout(timeout):
            while not (job := await self.line.service.outbound.get(job_id)).final:
                await asyncio.sleep(0.02)
        await self.media.wait_calls()  # the callee's transcript is written
        return job

    def heard(self, job_id: str) -> str:
        return (self.data_dir / SIM_CALLEES / f"{job_id}.txt").read_text()

    def cellphones(self) -> list[dict[str, Any]]:
        return [d for d in self.sandbox.devices.values() if d.get("device_type") == "cellphone"]


@asynccontextmanager
async def kazoo_line(
    data_dir: Path, callee: Callable[[CallflowCall], Caller] | None = None,
) -> AsyncIterator[KazooLine]:
    # Legs end at once (no ringing): the platform's first CDR poll finds them.
    sandbox = KazooSandbox(KazooKnobs(ring_seconds=0))
    async with KazooSandboxServer(sandbox) as kazoo, running_line(
        data_dir, outbound_hours="00:00-24:00", outbound_retry_seconds=1, kazoo_url=kazoo.crossbar_url,
        kazoo_username=SANDBOX_USERNAME, kazoo_password=SANDBOX_PASSWORD, kazoo_account_name=SANDBOX_ACCOUNT_NAME,
        kazoo_pivot_secret=SECRET, kazoo_notice_number=NOTICE_NUMBER, kazoo_pivot_margin=0.5,
        kazoo_pivot_play_seconds=0,
    ) as line:
        # What IVR_PUBLIC_URL names: the service's HTTP listener (its default when unset).
        public_url = line.service.http.url.rstrip("/")
        async with KazooClient.from_settings(line.settings) as client:
            made = await provision_pivot(client, number=NOTICE_NUMBER, public_url=public_url, route="announce",
                                         secret=SECRET)
        assert made.action == "created"
        sounds = SoundLibrary(CATALOG, TtsCache(data_dir / "tts"))
        async with KazooMediaSide(sandbox, sounds=sounds, catalog=CATALOG, heard_dir=data_dir / SIM_CALLEES,
                                  callee=callee) as media:
            yield KazooLine(line, sandbox, media, data_dir)


async def test_a_notice_via_kazoo_is_heard_and_completed(tmp_path: Path) -> None:
    async with kazoo_line(tmp_path) as kazoo:
        job, _ = await kazoo.line.service.outbound.submit({**NOTICE, "code": "4384341"})
        done = await kazoo.final(job.id)
        [record] = await kazoo.line.service.jobs.announce_records(f"{job.id}-1")
        heard = kazoo.heard(job.id)
        [played] = kazoo.media.results

    assert done.state is JobState.COMPLETED and done.reason == "announced" and done.code is None
    assert record.outcome is Outcome.ANNOUNCED and record.attempt_id == f"{job.id}-1"
    assert record.call_id == played.call_id, "the announce call is the quickcall's answered leg"
    assert record.codes == ["*****41"]
    assert "Your showing at 12 Elm Street is confirmed." in heard
    assert heard.splitlines()[1:3] == ['[tts] "Your showing at 12 Elm Street is confirmed."', "[digits] *****41"]
    assert "4384341" not in heard
    assert kazoo.sandbox.quickcalls[f"{job.id}-1"] == 1, "exactly one quickcall for the attempt"
    assert done.attempts[0].refs["device_id"] not in kazoo.sandbox.devices and kazoo.cellphones() == []
    assert kazoo.sandbox.channels() == []


async def test_a_notice_to_a_busy_number_is_retried_then_busy(tmp_path: Path) -> None:
    async with kazoo_line(tmp_path) as kazoo:
        job, _ = await kazoo.line.service.outbound.submit({**NOTICE, "to": BUSY_NUMBER, "max_attempts": 2})
        done = await kazoo.final(job.id)

    assert done.state is JobState.BUSY and done.attempts_used == 2
    assert [a.state for a in done.attempts] == [JobState.BUSY, JobState.BUSY]
    assert kazoo.sandbox.quickcalls[f"{job.id}-1"] == 1 and kazoo.sandbox.quickcalls[f"{job.id}-2"] == 1
    assert list(kazoo.media.results) == [], "nobody answered: no pivot call"
    assert kazoo.cellphones() == []


async def test_a_key_holder_who_hangs_up_mid_announcement(tmp_path: Path) -> None:
    async with kazoo_line(tmp_path, callee=lambda _: ScriptedCaller(hangup_on="digits")) as kazoo:
        job, _ = await kazoo.line.service.outbound.submit({**NOTICE, "code": "4384341"})
        done = await kazoo.final(job.id)
        [record] = await kazoo.line.service.jobs.announce_records(f"{job.id}-1")
        heard = kazoo.heard(job.id)
        [played] = kazoo.media.results

    assert played.ended_by == "caller"
    assert record.outcome is Outcome.CALLER_HANGUP and record.attempt_id == f"{job.id}-1"
    # As over Asterisk: the call was answered and the announcement began, so the job is done.
    assert done.state is JobState.COMPLETED and done.reason == "caller_hangup"
    assert "[hangup] caller" in heard and "4384341" not in heard
    assert kazoo.sandbox.quickcalls[f"{job.id}-1"] == 1 and done.attempts_used == 1
    assert kazoo.cellphones() == []
