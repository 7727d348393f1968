"""Outbound calls end to end: the service's runner, the Asterisk platform over a real AMI
connection to the simulated Asterisk, the callee's `announce` call back over FastAGI, and the
job's record — on a fresh service and across a restart with jobs in every state."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.line import Line, running_line

from ivr.errors import JobInputError, SettingsError
from ivr.outbound import Job, JobState
from ivr.outbound.platforms.ictcore.sandbox import (
    SANDBOX_PASSWORD,
    IctCoreKnobs,
    IctCoreSandbox,
    IctCoreSandboxServer,
)
from ivr.outbound.platforms.kazoo.sandbox import AGENT_USER_ID, KazooSandboxServer
from ivr.outbound.platforms.kazoo.sandbox import SANDBOX_ACCOUNT_NAME as KAZOO_ACCOUNT_NAME
from ivr.outbound.platforms.kazoo.sandbox import SANDBOX_PASSWORD as KAZOO_PASSWORD
from ivr.outbound.platforms.kazoo.sandbox import SANDBOX_USERNAME as KAZOO_USERNAME
from ivr.records import Outcome
from ivr.service import SIM_CALLEES
from ivr.sim import SimulatedAmi
from ivr.store import SqliteStore

SECRET = "e2e-ami-secret"
NOTICE = {"kind": "notice", "to": "5551234", "message": "Your showing at 12 Elm Street is confirmed."}


@asynccontextmanager
async def line_on(data_dir: Path, ami: SimulatedAmi | None = None, **settings: Any) -> AsyncIterator[Line]:
    """A line whose outbound calls go to `ami` (else the simulated Asterisk it embeds)."""
    if ami is not None:
        settings = {"ami_host": "127.0.0.1", "ami_port": ami.port, "ami_secret": SECRET, **settings}
    async with running_line(data_dir, outbound_hours="00:00-24:00", outbound_retry_seconds=1, **settings) as line:
        if ami is not None:
            ami.agi_address = line.address
        yield line


async def until(check: Callable[[], Any], timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.02)


async def final(line: Line, job_id: str, timeout: float = 15.0) -> Job:
    async def done() -> bool:
        return (await line.service.outbound.get(job_id)).final
    await until(done, timeout)
    return await line.service.outbound.get(job_id)


async def test_a_notice_is_placed_announced_and_completed(tmp_path: Path) -> None:
    async with line_on(tmp_path) as line:
        job, _ = await line.service.outbound.submit({**NOTICE, "code": "4384341"})
        done = await final(line, job.id)
        [record] = await line.service.jobs.announce_records(f"{job.id}-1")
        heard = (tmp_path / SIM_CALLEES / f"{job.id}.txt").read_text()

    assert done.state is JobState.COMPLETED and done.code is None
    assert [e.state for e in done.history] == [JobState.QUEUED, JobState.DIALING, JobState.RINGING,
                                               JobState.ANSWERED, JobState.COMPLETED]
    assert done.attempts[0].refs["action_id"] == f"{job.id}-1"
    assert record.outcome is Outcome.ANNOUNCED and record.codes == ["*****41"]
    assert record.call_id == f"{job.id}-1", "the channel's Uniqueid is the attempt id"
    assert "Your showing at 12 Elm Street is confirmed." in heard
    assert "*****41" in heard and "4384341" not in heard


async def test_a_busy_number_is_tried_max_attempts_times_then_busy(tmp_path: Path) -> None:
    async with SimulatedAmi(secret=SECRET) as ami, line_on(tmp_path, ami) as line:
        job, _ = await line.service.outbound.submit({**NOTICE, "to": "5550101", "max_attempts": 2})
        done = await final(line, job.id)
    assert done.state is JobState.BUSY and done.attempts_used == 2
    assert [o.action_id for o in ami.originates] == [f"{job.id}-1", f"{job.id}-2"]


async def test_a_bridge_rings_the_agent_then_the_key_holder(tmp_path: Path) -> None:
    async with SimulatedAmi(secret=SECRET) as ami, line_on(tmp_path, ami) as line:
        job, _ = await line.service.outbound.submit({"kind": "bridge", "to": "5551234", "agent": "PJSIP/agent1"})
        done = await final(line, job.id)
    assert done.state is JobState.COMPLETED and done.reason == "both legs answered"
    [originate] = ami.originates
    assert originate.channel == "PJSIP/agent1" and originate.context == "keybox-bridge"
    assert originate.variables["IVR_BRIDGE_DIAL"] == "PJSIP/5551234@carrier"


async def test_a_notice_via_ictcore_and_a_bridge_refused_there(tmp_path: Path) -> None:
    sandbox = IctCoreSandbox(IctCoreKnobs(call_seconds=0.05))
    async with IctCoreSandboxServer(sandbox) as ictcore, line_on(
        tmp_path, ictcore_url=ictcore.url, ictcore_password=SANDBOX_PASSWORD
    ) as line:
        job, _ = await line.service.outbound.submit({**NOTICE, "via": "ictcore", "code": "4384341"})
        done = await final(line, job.id, timeout=30)
        with pytest.raises(JobInputError, match="bridge cannot be placed via ictcore"):
            await line.service.outbound.submit({"kind": "bridge", "to": "5551234", "agent": "PJSIP/agent1",
                                                "via": "ictcore"})
    assert done.state is JobState.COMPLETED and done.code is None
    refs = done.attempts[0].refs
    assert {"contact_id", "program_id", "transmission_id", "spool_id"} <= set(refs)
    assert sum(sandbox.sends.values()) == 1


async def test_a_bridge_via_kazoo_quickcalls_the_agent_once(tmp_path: Path) -> None:
    async with KazooSandboxServer() as kazoo, line_on(
        tmp_path, kazoo_url=kazoo.crossbar_url, kazoo_username=KAZOO_USERNAME, kazoo_password=KAZOO_PASSWORD,
        kazoo_account_name=KAZOO_ACCOUNT_NAME,
    ) as line:
        job, _ = await line.service.outbound.submit({"kind": "bridge", "to": "5551234", "via": "kazoo",
                                                     "agent": f"user:{AGENT_USER_ID}"})
        done = await final(line, job.id, timeout=30)
    assert done.state is JobState.COMPLETED
    assert kazoo.sandbox.quickcalls[f"{job.id}-1"] == 1
    assert done.attempts[0].refs["job_variable"] == f"{job.id}-1"


async def test_a_refused_ami_login_stops_the_service_naming_the_setting(tmp_path: Path) -> None:
    async with SimulatedAmi(secret="another-secret") as ami:
        with pytest.raises(SettingsError, match="IVR_AMI_SECRET") as caught:
            async with line_on(tmp_path, ami):
                pass
    assert SECRET not in str(caught.value) and "another-secret" not in str(caught.value)


async def test_the_platform_down_at_submit_time_keeps_the_job_until_it_is_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ivr.outbound._runner.UNAVAILABLE_BACKOFF", (0.05, 0.1))
    ami = SimulatedAmi(secret=SECRET)
    await ami.start()
    port = ami.port
    await ami.stop()  # Asterisk is down when the service starts and when the job comes
    async with line_on(tmp_path, ami, ami_port=port) as line:
        job, _ = await line.service.outbound.submit(NOTICE)

        async def waiting() -> bool:
            return "unavailable, no call placed" in (await line.service.outbound.get(job.id)).reason
        await until(waiting)
        back = SimulatedAmi(secret=SECRET, port=port, agi_address=line.address)
        async with back:
            done = await final(line, job.id, timeout=30)
    assert done.state is JobState.COMPLETED and done.attempts_used == 1
    assert len(back.originates) == 1


async def test_ami_dropped_mid_originate_calls_once(tmp_path: Path) -> None:
    async with SimulatedAmi(secret=SECRET) as ami, line_on(tmp_path, ami) as line:
        ami.drop_on_originate = 1
        job, _ = await line.service.outbound.submit(NOTICE)
        done = await final(line, job.id, timeout=30)
    assert done.state is JobState.COMPLETED
    assert [o.action_id for o in ami.originates] == [f"{job.id}-1"]


async def test_a_restart_with_jobs_in_every_state_calls_none_twice(tmp_path: Path) -> None:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    async with SimulatedAmi(secret=SECRET, ring_seconds=1.5) as ami:
        async with line_on(tmp_path, ami) as line:
            jobs = line.service.outbound
            failed, _ = await jobs.submit({**NOTICE, "to": "5550104"})
            done, _ = await jobs.submit({**NOTICE, "to": "5559876"})
            assert (await final(line, failed.id)).state is JobState.FAILED
            assert (await final(line, done.id)).state is JobState.COMPLETED
            held, _ = await jobs.submit({**NOTICE, "not_before": tomorrow})
            cancelled, _ = await jobs.submit({**NOTICE, "not_before": tomorrow})
            await jobs.cancel(cancelled.id)
            ringing, _ = await jobs.submit(NOTICE)
            unanswered, _ = await jobs.submit({**NOTICE, "to": "5550102", "max_attempts": 2})
            bridge, _ = await jobs.submit({"kind": "bridge", "to": "5551234", "agent": "PJSIP/agent1"})

            async def all_ringing() -> bool:
                states = [(await jobs.get(j.id)).state for j in (ringing, unanswered, bridge)]
                return states == [JobState.RINGING] * 3
            await until(all_ringing)
        # the service stopped with three calls ringing; the simulated Asterisk goes on
        async with line_on(tmp_path, ami) as line:
            jobs = line.service.outbound
            ends = {name: await final(line, job.id, timeout=30)
                    for name, job in (("ringing", ringing), ("unanswered", unanswered), ("bridge", bridge))}
            still = await jobs.get(held.id)
            gone = await jobs.get(cancelled.id)
            unchanged = [(await jobs.get(j.id)).state for j in (failed, done)]
    assert ends["ringing"].state is JobState.COMPLETED and ends["ringing"].attempts_used == 1
    assert ends["unanswered"].state is JobState.NO_ANSWER and ends["unanswered"].attempts_used == 2
    # a bridge whose outcome was not seen is never rung again without the agent asking
    assert ends["bridge"].state in (JobState.COMPLETED, JobState.FAILED) and ends["bridge"].attempts_used == 1
    assert still.state is JobState.QUEUED and gone.state is JobState.CANCELLED
    assert unchanged == [JobState.FAILED, JobState.COMPLETED]
    placed = [o.action_id for o in ami.originates]
    assert sorted(placed) == sorted({*placed}), "an attempt was originated twice"
    assert sorted(placed) == sorted([f"{failed.id}-1", f"{done.id}-1", f"{ringing.id}-1", f"{unanswered.id}-1",
                                     f"{unanswered.id}-2", f"{bridge.id}-1"])


async def test_a_stop_while_a_notice_rings_still_delivers_it(tmp_path: Path) -> None:
    async with SimulatedAmi(secret=SECRET, ring_seconds=1.0) as ami:
        async with line_on(tmp_path, ami, drain_seconds=20) as line:
            job, _ = await line.service.outbound.submit(NOTICE)

            async def ringing() -> bool:
                return (await line.service.outbound.get(job.id)).state is JobState.RINGING
            await until(ringing)
        # the service has stopped: it waited for the call before closing FastAGI
        store = await SqliteStore.open(tmp_path / "calls.db")
        try:
            kept = await store.job(job.id)
        finally:
            await store.close()
    assert kept is not None and kept.state is JobState.COMPLETED
    assert [o.action_id for o in ami.originates] == [f"{job.id}-1"]


async def test_healthz_shows_the_outbound_platforms_without_judging_them(tmp_path: Path) -> None:
    ami = SimulatedAmi(secret=SECRET)
    async with ami, line_on(tmp_path, ami) as line, httpx.AsyncClient(base_url=line.service.http.url) as http:
        up = (await http.get("/healthz")).json()["outbound"]
        await ami.stop()  # Asterisk goes away: calls wait, inbound calls do not care

        async def noticed() -> bool:
            return line.service.runner is not None and line.service.runner.status()["platforms"] != up["platforms"]
        await until(noticed)
        answer = await http.get("/healthz")
    assert up == {"runner": "running", "platforms": {"asterisk": {"state": "connected", "active_calls": 0}}}
    assert answer.json()["outbound"]["platforms"]["asterisk"]["state"] == "disconnected"
    assert answer.status_code == 200
