"""`AsteriskPlatform` against the simulated Asterisk Manager (`ivr.sim.SimulatedAmi`), which
speaks Asterisk 22's wire and events; answered calls there hang up at once (no `agi_address`),
so a test hands the `announce` route's record to the context itself."""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from support.outbound import RecordingContext, make_job

from ivr.errors import PlatformRejectedError, PlatformUnavailableError, SettingsError
from ivr.outbound import AttemptEnd, JobKind, JobState
from ivr.outbound.platforms.asterisk import AmiConnection, AmiMessage, AsteriskPlatform, ConnectionLost
from ivr.records import CallRecord, Outcome
from ivr.sim import SimulatedAmi

SECRET = "sim-secret-7d21"


class Context(RecordingContext):
    """A `RecordingContext` that can be awaited for a state, and that notes what the Manager had
    received each time refs were noted."""

    def __init__(self, sim: SimulatedAmi, kind: JobKind = JobKind.NOTICE, **job: Any) -> None:
        super().__init__(make_job(kind, **job))
        self._sim = sim
        self._changed = asyncio.Event()
        self.originates_at_refs: list[int] = []

    async def note_refs(self, **refs: str) -> None:
        self.originates_at_refs.append(len(self._sim.originates))
        await super().note_refs(**refs)

    async def progress(self, state: JobState, reason: str = "") -> None:
        await super().progress(state, reason)
        self._changed.set()

    async def reached(self, state: JobState, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while state not in [s for s, _ in self.states]:
                self._changed.clear()
                await self._changed.wait()

    def announce_record(self, outcome: Outcome = Outcome.ANNOUNCED) -> None:
        """What the runner does when the `announce` call of this attempt ends."""
        self.record_arrived(CallRecord(call_id=f"call-{self.attempt.id}", route="announce", caller_id="",
                                       attempt_id=self.attempt.id, outcome=outcome))


@pytest.fixture
async def sim() -> AsyncIterator[SimulatedAmi]:
    async with SimulatedAmi(username="keybox", secret=SECRET, ring_seconds=0.05, bridge_seconds=0.05) as server:
        yield server



def platform(port: int, **options: Any) -> AsteriskPlatform:
    settings: dict[str, Any] = {
        "secret": SECRET, "ring_seconds": 5.0, "action_timeout": 1.0, "record_wait": 0.3,
        "caller_id": "Keybox <5550100>", "reconnect_min": 0.01, "reconnect_max": 0.05,
    }
    settings.update(options)
    return AsteriskPlatform(host="127.0.0.1", port=port, username="keybox", **settings)


@pytest.fixture
async def made(sim: SimulatedAmi) -> AsyncIterator[list[AsteriskPlatform]]:
    """Every platform a test makes with `make`, closed after it whatever happened."""
    platforms: list[AsteriskPlatform] = []
    yield platforms
    for each in platforms:
        await each.close()


@pytest.fixture
def make(sim: SimulatedAmi, made: list[AsteriskPlatform]) -> Any:
    def make(port: int | None = None, **options: Any) -> AsteriskPlatform:
        made.append(platform(sim.port if port is None else port, **options))
        return made[-1]
    return make


@pytest.fixture
async def asterisk(make: Any) -> AsteriskPlatform:
    started: AsteriskPlatform = make()
    await started.start()
    return started


async def test_a_refused_login_is_a_settings_error_naming_the_setting(sim: SimulatedAmi, make: Any,
                                                                      log_text: io.StringIO) -> None:
    sim.refuse_login = True
    refused = make()
    with pytest.raises(SettingsError, match=r"^IVR_AMI_SECRET: .*'keybox'.*IVR_AMI_USERNAME") as caught:
        await refused.start()
    assert SECRET not in str(caught.value) and SECRET not in log_text.getvalue()


async def test_a_notice_is_one_async_originate_and_ends_with_the_announcement(
    sim: SimulatedAmi, asterisk: AsteriskPlatform
) -> None:
    ctx = Context(sim)
    ctx.announce_record()
    end = await asterisk.place(ctx)
    assert end == AttemptEnd(JobState.COMPLETED, "announced")
    assert [s for s, _ in ctx.states] == [JobState.RINGING, JobState.ANSWERED]
    [originate] = sim.originates
    attempt_id = ctx.attempt.id
    assert originate.is_async and originate.action_id == attempt_id and originate.channel_id == attempt_id
    assert (originate.channel, originate.context, originate.exten) == ("PJSIP/5551234@carrier", "keybox-announce", "s")
    assert originate.variables == {"IVR_JOB_ID": ctx.job.id, "IVR_ATTEMPT_ID": attempt_id}
    assert originate.timeout == 5.0 and originate.caller_id == ("5550100", "Keybox")
    refs = ctx.attempt.refs
    assert refs["action_id"] == refs["channel_id"] == refs["uniqueid"] == attempt_id
    assert refs["channel"].startswith("PJSIP/carrier-")


async def test_the_refs_are_noted_before_the_originate_is_sent(sim: SimulatedAmi, asterisk: AsteriskPlatform) -> None:
    ctx = Context(sim)
    ctx.announce_record()
    await asterisk.place(ctx)
    assert ctx.originates_at_refs[0] == 0 and len(sim.originates) == 1


async def test_the_record_s_outcome_is_the_reason(sim: SimulatedAmi, asterisk: AsteriskPlatform) -> None:
    ctx = Context(sim)
    ctx.announce_record(Outcome.CALLER_HANGUP)
    assert await asterisk.place(ctx) == AttemptEnd(JobState.COMPLETED, "caller_hangup")


async def test_answered_without_a_record_is_no_answer(sim: SimulatedAmi, asterisk: AsteriskPlatform) -> None:
    end = await asterisk.place(Context(sim))
    assert end == AttemptEnd(JobState.NO_ANSWER, "answered but the announcement did not run")


@pytest.mark.parametrize(("number", "state", "reason"), [
    ("5550101", JobState.BUSY, "busy"),
    ("5550102", JobState.NO_ANSWER, "no answer"),
    ("5550103", JobState.BUSY, "congestion"),
    ("5550104", JobState.FAILED, "the call could not be placed"),
])
async def test_each_reason_ends_the_attempt(sim: SimulatedAmi, asterisk: AsteriskPlatform, number: str,
                                            state: JobState, reason: str) -> None:
    ctx = Context(sim, to=number)
    assert await asterisk.place(ctx) == AttemptEnd(state, reason)
    assert JobState.ANSWERED not in [s for s, _ in ctx.states]


async def test_an_originate_refused_by_asterisk_is_rejected(sim: SimulatedAmi, make: Any) -> None:
    bad = make(dial_template="no-technology-{number}")
    await bad.start()
    with pytest.raises(PlatformRejectedError, match="Invalid channel"):
        await bad.place(Context(sim))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_an_unreachable_manager_is_unavailable_and_nothing_is_sent(sim: SimulatedAmi, make: Any) -> None:
    away = make(free_port(), action_timeout=0.2)
    await away.start()  # not an error: jobs wait
    ctx = Context(sim)
    with pytest.raises(PlatformUnavailableError, match="not connected"):
        await away.place(ctx)
    assert ctx.attempt.refs == {} and sim.originates == []
    with pytest.raises(PlatformUnavailableError):
        await away.follow(ctx)


async def test_a_connection_dropped_mid_originate_sends_it_once_and_finds_the_call(sim: SimulatedAmi,
                                                                                   make: Any) -> None:
    sim.ring_seconds = 1.0  # still ringing when the connection is back
    sim.drop_on_originate = 1
    dropped = make()
    await dropped.start()
    ctx = Context(sim)
    ctx.announce_record()
    end = await dropped.place(ctx)
    assert end == AttemptEnd(JobState.COMPLETED, "announced")
    assert len(sim.originates) == 1 and dropped.ami.connections == 2
    assert JobState.ANSWERED in [s for s, _ in ctx.states]


async def test_a_connection_dropped_mid_originate_after_the_call_ended(sim: SimulatedAmi, make: Any) -> None:
    sim.drop_on_originate = 1
    dropped = make(reconnect_min=0.3, reconnect_max=0.3)
    await dropped.start()
    ctx = Context(sim)
    end = await dropped.place(ctx)  # the call was over before the connection came back
    assert end == AttemptEnd(JobState.NO_ANSWER,
                             "no answer reported; no call found after the Manager connection came back")
    assert len(sim.originates) == 1


async def test_a_lost_connection_while_a_bridge_talks_is_failed_not_retried(sim: SimulatedAmi, make: Any) -> None:
    sim.bridge_seconds = 0.5
    watched = make(ping_interval=0.05, action_timeout=0.2)
    await watched.start()
    ctx = Context(sim, JobKind.BRIDGE, agent="PJSIP/agent1")
    placing = asyncio.create_task(watched.place(ctx))
    await ctx.reached(JobState.ANSWERED)
    sim.silent = True  # half-open: the watchdog drops it; the bridge ends unseen
    await sim.settled(5)
    sim.silent = False
    end = await asyncio.wait_for(placing, 5)
    assert end == AttemptEnd(JobState.FAILED, "outcome unknown: the Manager connection was lost")
    assert len(sim.originates) == 1 and watched.ami.connections >= 2


async def test_the_watchdog_brings_back_a_silent_connection(sim: SimulatedAmi, make: Any) -> None:
    watched = make(ping_interval=0.05, action_timeout=0.2)
    await watched.start()
    with watched.ami.events() as stream:
        sim.silent = True
        lost = await stream.next(3)
        assert isinstance(lost, ConnectionLost) and "Ping" in lost.reason
        sim.silent = False
    assert await watched.ami.wait_connected(3)
    ctx = Context(sim)
    ctx.announce_record()
    assert (await watched.place(ctx)).state is JobState.COMPLETED


@pytest.mark.parametrize(("to", "state", "reason"), [
    ("5551234", JobState.COMPLETED, "both legs answered"),
    ("5550101", JobState.BUSY, "the key holder's line was busy"),
    ("5550102", JobState.NO_ANSWER, "the key holder did not answer"),
    ("5550103", JobState.BUSY, "congestion dialling the key holder"),
    ("5550104", JobState.FAILED, "the key holder could not be dialled (CHANUNAVAIL)"),
])
async def test_a_bridge_rings_the_agent_then_the_key_holder(sim: SimulatedAmi, asterisk: AsteriskPlatform, to: str,
                                                           state: JobState, reason: str) -> None:
    ctx = Context(sim, JobKind.BRIDGE, agent="PJSIP/agent1", to=to)
    assert await asterisk.place(ctx) == AttemptEnd(state, reason)
    [originate] = sim.originates
    assert (originate.channel, originate.context, originate.exten) == ("PJSIP/agent1", "keybox-bridge", "s")
    assert originate.variables == {"IVR_JOB_ID": ctx.job.id, "IVR_ATTEMPT_ID": ctx.attempt.id,
                                   "IVR_BRIDGE_DIAL": f"PJSIP/{to}@carrier"}
    assert originate.channel_id == ctx.attempt.id and JobState.ANSWERED in [s for s, _ in ctx.states]


async def test_a_bridge_whose_agent_is_busy(sim: SimulatedAmi, asterisk: AsteriskPlatform) -> None:
    ctx = Context(sim, JobKind.BRIDGE, agent="PJSIP/5550101")
    assert await asterisk.place(ctx) == AttemptEnd(JobState.BUSY, "agent: busy")


async def originate_elsewhere(sim: SimulatedAmi, ctx: Context) -> None:
    """The Originate as a service that then stopped would have sent it, the channel up once back."""
    other = AmiConnection(host="127.0.0.1", port=sim.port, username="keybox", secret=SECRET)
    await other.start()
    with other.events() as stream:
        await ctx.note_refs(action_id=ctx.attempt.id, channel_id=ctx.attempt.id)
        await other.send(platform(sim.port).originate(ctx))
        while True:
            event = await stream.next(3)
            assert isinstance(event, AmiMessage)
            if event.event == "Newchannel" and event.get("uniqueid") == ctx.attempt.id:
                break
    await other.close()


async def test_follow_waits_for_a_call_still_up(sim: SimulatedAmi, asterisk: AsteriskPlatform) -> None:
    sim.ring_seconds = 0.3
    ctx = Context(sim)
    await originate_elsewhere(sim, ctx)
    ctx.announce_record()
    assert await asterisk.follow(ctx) == AttemptEnd(JobState.COMPLETED, "announced")
    assert len(sim.originates) == 1 and ctx.attempt.refs["channel"].startswith("PJSIP/carrier-")


async def test_follow_of_a_bridge_still_up(sim: SimulatedAmi, asterisk: AsteriskPlatform) -> None:
    sim.ring_seconds = 0.3
    ctx = Context(sim, JobKind.BRIDGE, agent="PJSIP/agent1")
    await originate_elsewhere(sim, ctx)
    assert await asterisk.follow(ctx) == AttemptEnd(JobState.COMPLETED, "both legs answered")
    assert len(sim.originates) == 1


async def test_follow_of_a_notice_gone_is_its_record_or_no_answer(sim: SimulatedAmi,
                                                                  asterisk: AsteriskPlatform) -> None:
    ctx = Context(sim)
    assert await asterisk.follow(ctx) == AttemptEnd(JobState.NO_ANSWER,
                                                    "not answered (no call found after the restart)")
    ctx.announce_record()
    assert await asterisk.follow(ctx) == AttemptEnd(JobState.COMPLETED, "announced")
    assert sim.originates == []


async def test_follow_of_a_bridge_gone_is_failed(sim: SimulatedAmi, asterisk: AsteriskPlatform) -> None:
    ctx = Context(sim, JobKind.BRIDGE, agent="PJSIP/agent1")
    assert await asterisk.follow(ctx) == AttemptEnd(JobState.FAILED, "outcome unknown after the restart")
    assert sim.originates == []
