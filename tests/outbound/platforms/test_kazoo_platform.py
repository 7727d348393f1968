"""The Kazoo platform placing and following `bridge` and `notice` calls through the sandbox, on
real loopback sockets. Every test checks the sandbox's own count: one quickcall per attempt."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable

import pytest
from support.outbound import RecordingContext, make_job

from ivr.errors import PlatformRejectedError, PlatformUnavailableError, SettingsError
from ivr.outbound import Job, JobKind, JobState
from ivr.outbound.platforms.kazoo import JOB_VARIABLE, KazooClient, KazooPlatform, caller_id_parts, pivot_flow
from ivr.outbound.platforms.kazoo.sandbox import (
    AGENT_DEVICE_ID,
    AGENT_USER_ID,
    BUSY_NUMBER,
    FAILED_NUMBER,
    NO_ANSWER_NUMBER,
    SANDBOX_ACCOUNT_ID,
    SANDBOX_ACCOUNT_NAME,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
    CallflowCall,
    KazooKnobs,
    KazooSandbox,
    KazooSandboxServer,
)
from ivr.records import CallRecord, Outcome

PIVOT_NUMBER = "7770001"
TIMEOUT = 0.5


def new_platform(url: str, *, password: str = SANDBOX_PASSWORD, **options: float) -> KazooPlatform:
    client = KazooClient(url, account_id=SANDBOX_ACCOUNT_ID, username=SANDBOX_USERNAME, password=password,
                         account_name=SANDBOX_ACCOUNT_NAME, timeout=TIMEOUT)
    settings: dict[str, float] = {"poll_min": 0.01, "poll_max": 0.05, "follow_limit": 5.0,
                                  "record_wait": 1.0} | options
    return KazooPlatform(client, pivot_number=PIVOT_NUMBER, cid_number="5550000", **settings)


@pytest.fixture
async def server() -> AsyncIterator[KazooSandboxServer]:
    async with KazooSandboxServer(KazooSandbox(KazooKnobs(ring_seconds=0.01, call_seconds=0.05))) as running:
        yield running


@pytest.fixture
async def platform(server: KazooSandboxServer) -> AsyncIterator[KazooPlatform]:
    kazoo = new_platform(server.crossbar_url)
    await kazoo.start()
    await kazoo.client.create_callflow(name="keybox announce", numbers=[PIVOT_NUMBER],
                                       flow=pivot_flow("http://127.0.0.1:9/kazoo/pivot/announce"))
    yield kazoo
    await kazoo.close()


def bridge(to: str = "5550123", agent: str = f"user:{AGENT_USER_ID}") -> Job:
    return make_job(JobKind.BRIDGE, to=to, via="kazoo", agent=agent)


def notice(to: str = "5550123") -> Job:
    return make_job(JobKind.NOTICE, to=to, via="kazoo")


class WatchingContext(RecordingContext):
    """A RecordingContext that calls `on_note(refs)` whenever refs are noted."""

    def __init__(self, job: Job, on_note: Callable[[dict[str, str]], None]) -> None:
        super().__init__(job)
        self._on_note = on_note

    async def note_refs(self, **refs: str) -> None:
        await super().note_refs(**refs)
        self._on_note(refs)


# -- bridge -------------------------------------------------------------------------------

async def test_bridge_answered_by_both_legs_is_completed(server: KazooSandboxServer,
                                                         platform: KazooPlatform) -> None:
    ctx = RecordingContext(bridge())
    assert platform.status() == "ready"
    end = await platform.place(ctx)
    assert end.state is JobState.COMPLETED, end
    refs = ctx.attempt.refs
    assert refs["job_variable"] == ctx.attempt.id
    assert refs["call_ids"].endswith("-quickcall")
    assert server.sandbox.quickcalls[ctx.attempt.id] == 1
    sent = server.sandbox.quickcall_log[-1]
    assert sent["kind"] == "users" and sent["endpoint_id"] == AGENT_USER_ID and sent["number"] == "5550123"
    assert sent[JOB_VARIABLE] == ctx.attempt.id
    assert sent["auto_answer"] == "false" and sent["cid-number"] == "5550000"


@pytest.mark.parametrize(("to", "state", "cause"), [
    (BUSY_NUMBER, JobState.BUSY, "USER_BUSY"),
    (NO_ANSWER_NUMBER, JobState.NO_ANSWER, "NO_ANSWER"),
    (FAILED_NUMBER, JobState.FAILED, "UNALLOCATED_NUMBER"),
])
async def test_bridge_outcomes_by_number(server: KazooSandboxServer, platform: KazooPlatform,
                                         to: str, state: JobState, cause: str) -> None:
    ctx = RecordingContext(bridge(to))
    end = await platform.place(ctx)
    assert end.state is state
    assert cause in end.reason and end.reason.startswith("key holder")
    assert server.sandbox.quickcalls[ctx.attempt.id] == 1


async def test_bridge_to_a_bare_device_id_and_an_agent_who_does_not_answer(server: KazooSandboxServer,
                                                                          platform: KazooPlatform) -> None:
    server.sandbox.knobs.agent_answers = False
    ctx = RecordingContext(bridge(agent=AGENT_DEVICE_ID))
    end = await platform.place(ctx)
    assert end.state is JobState.NO_ANSWER and end.reason.startswith("agent:")
    assert server.sandbox.quickcall_log[-1]["kind"] == "devices"
    assert server.sandbox.quickcalls[ctx.attempt.id] == 1


async def test_a_quickcall_answered_too_late_is_followed_never_sent_again(server: KazooSandboxServer,
                                                                         platform: KazooPlatform) -> None:
    server.sandbox.knobs.latency = TIMEOUT * 3

    def on_note(refs: dict[str, str]) -> None:
        if "quickcall_unclear" in refs:
            server.sandbox.knobs.latency = 0  # Kazoo answers again: the CDR polls get through

    ctx = WatchingContext(bridge(), on_note)
    end = await platform.place(ctx)
    assert end.state is JobState.COMPLETED, end
    assert "quickcall_unclear" in ctx.attempt.refs and "call_ids" not in ctx.attempt.refs
    assert server.sandbox.quickcalls[ctx.attempt.id] == 1
    assert server.sandbox.requests["GET /users/{id}/quickcall"] == 1


async def test_a_token_that_expires_mid_job_is_renewed_and_the_call_followed(server: KazooSandboxServer,
                                                                            platform: KazooPlatform) -> None:
    def expire(refs: dict[str, str]) -> None:
        if "call_ids" in refs:  # Kazoo took the quickcall; every token dies before the first poll
            server.sandbox.revoke_tokens()

    ctx = WatchingContext(bridge(), expire)
    end = await platform.place(ctx)
    assert end.state is JobState.COMPLETED
    assert server.sandbox.quickcalls[ctx.attempt.id] == 1
    assert server.sandbox.requests["PUT /user_auth"] == 2  # the first token, and one renewal


async def test_a_5xx_before_the_quickcall_placed_nothing(server: KazooSandboxServer,
                                                         platform: KazooPlatform) -> None:
    server.sandbox.knobs.fail_next = [503]
    ctx = RecordingContext(bridge())
    with pytest.raises(PlatformUnavailableError):
        await platform.place(ctx)
    assert server.sandbox.quickcalls[ctx.attempt.id] == 0
    assert ctx.attempt.refs["quickcall_refused"] == ctx.attempt.refs["quickcall_at"]
    # the runner tries the same attempt later: now it is placed, once
    end = await platform.place(ctx)
    assert end.state is JobState.COMPLETED
    assert server.sandbox.quickcalls[ctx.attempt.id] == 1


async def test_a_kazoo_that_cannot_be_reached_placed_nothing(server: KazooSandboxServer) -> None:
    kazoo = new_platform("http://127.0.0.1:9/v2")
    await kazoo.start()  # a warning only
    try:
        with pytest.raises(PlatformUnavailableError):
            await kazoo.place(RecordingContext(bridge()))
    finally:
        await kazoo.close()


async def test_an_unknown_agent_is_rejected(server: KazooSandboxServer, platform: KazooPlatform) -> None:
    ctx = RecordingContext(bridge(agent="user:0123456789abcdef0123456789abcdef"))
    with pytest.raises(PlatformRejectedError):
        await platform.place(ctx)
    with pytest.raises(PlatformRejectedError):
        await platform.place(RecordingContext(bridge(agent="phone:1")))


async def test_wrong_credentials_stop_start(server: KazooSandboxServer) -> None:
    kazoo = new_platform(server.crossbar_url, password="not-the-password-42")
    try:
        with pytest.raises(SettingsError):
            await kazoo.start()
    finally:
        await kazoo.close()


async def test_follow_of_a_finished_bridge_from_its_refs(server: KazooSandboxServer,
                                                         platform: KazooPlatform) -> None:
    ctx = RecordingContext(bridge(BUSY_NUMBER))
    first = await platform.place(ctx)
    await server.sandbox.wait_calls()
    later = new_platform(server.crossbar_url)  # after a restart: only the refs are left
    try:
        end = await later.follow(RecordingContext(ctx.job))
    finally:
        await later.close()
    assert end == first and end.state is JobState.BUSY
    assert server.sandbox.quickcalls[ctx.attempt.id] == 1


async def test_follow_of_an_attempt_never_sent_places_its_one_call(server: KazooSandboxServer,
                                                                   platform: KazooPlatform) -> None:
    ctx = RecordingContext(bridge())  # the service stopped before the quickcall went out
    end = await platform.follow(ctx)
    assert end.state is JobState.COMPLETED
    assert server.sandbox.quickcalls[ctx.attempt.id] == 1


async def test_follow_of_a_notice_never_sent_replaces_its_leftover_device(server: KazooSandboxServer,
                                                                          platform: KazooPlatform) -> None:
    ctx = RecordingContext(notice(BUSY_NUMBER))
    leftover = await platform.client.create_cellphone(name="keybox leftover", number=BUSY_NUMBER)
    await ctx.note_refs(device_id=leftover)  # stopped after the device, before the quickcall
    end = await platform.follow(ctx)
    assert end.state is JobState.BUSY
    assert ctx.attempt.refs["device_id"] != leftover
    assert [d for d in server.sandbox.devices.values() if d.get("device_type") == "cellphone"] == []
    assert server.sandbox.quickcalls[ctx.attempt.id] == 1


async def test_follow_of_a_refused_quickcall_sends_it_once(server: KazooSandboxServer,
                                                           platform: KazooPlatform) -> None:
    ctx = RecordingContext(bridge())
    await ctx.note_refs(job_variable=ctx.attempt.id, quickcall_at="1700000000.0", quickcall_refused="1700000000.0")
    end = await platform.follow(ctx)
    assert end.state is JobState.COMPLETED
    assert server.sandbox.quickcalls[ctx.attempt.id] == 1


async def test_follow_without_any_cdr_ends_outcome_unknown(server: KazooSandboxServer) -> None:
    kazoo = new_platform(server.crossbar_url, follow_limit=0.2)
    ctx = RecordingContext(bridge())
    await ctx.note_refs(job_variable=ctx.attempt.id, quickcall_at="1700000000.0")
    try:
        end = await kazoo.follow(ctx)
    finally:
        await kazoo.close()
    assert end.state is JobState.FAILED and "outcome unknown" in end.reason
    assert server.sandbox.quickcalls[ctx.attempt.id] == 0


# -- notice -------------------------------------------------------------------------------

def announce_record(ctx: RecordingContext, call: CallflowCall) -> CallRecord:
    return CallRecord(call_id=call.call_id, route="announce", caller_id=call.caller_id_number,
                      attempt_id=call.variables.get("attempt"), outcome=Outcome.ANNOUNCED)


async def test_notice_through_a_cellphone_device_and_the_pivot_callflow(server: KazooSandboxServer,
                                                                        platform: KazooPlatform) -> None:
    ctx = RecordingContext(notice())
    seen: list[CallflowCall] = []
    devices_at_call: list[dict[str, object]] = []

    def on_call(call: CallflowCall) -> None:
        seen.append(call)
        devices_at_call.append(dict(server.sandbox.devices[ctx.attempt.refs["device_id"]]))
        ctx.record_arrived(announce_record(ctx, call))  # as the announce route does when its call ends

    server.sandbox.on_callflow_call = on_call
    end = await platform.place(ctx)
    assert end.state is JobState.COMPLETED and end.reason == "announced"
    assert len(seen) == 1 and seen[0].number == PIVOT_NUMBER
    assert seen[0].variables["job"] == ctx.job.id and seen[0].variables["attempt"] == ctx.attempt.id
    assert seen[0].variables[JOB_VARIABLE] == ctx.attempt.id
    device = devices_at_call[0]
    assert device["device_type"] == "cellphone"
    forward = device["call_forward"]
    assert isinstance(forward, dict)
    assert (forward["enabled"], forward["number"], forward["require_keypress"]) == (True, "5550123", False)
    assert ctx.attempt.refs["device_id"] not in server.sandbox.devices  # deleted after
    assert server.sandbox.quickcalls[ctx.attempt.id] == 1


async def test_notice_answered_without_the_announcement(server: KazooSandboxServer,
                                                        platform: KazooPlatform) -> None:
    ctx = RecordingContext(notice())
    end = await platform.place(ctx)
    assert end.state is JobState.NO_ANSWER and "announcement did not run" in end.reason
    assert ctx.attempt.refs["device_id"] not in server.sandbox.devices


async def test_notice_to_a_busy_number_deletes_its_device(server: KazooSandboxServer,
                                                          platform: KazooPlatform) -> None:
    ctx = RecordingContext(notice(BUSY_NUMBER))
    end = await platform.place(ctx)
    assert end.state is JobState.BUSY
    assert ctx.attempt.refs["device_id"] not in server.sandbox.devices
    assert [d for d in server.sandbox.devices.values() if d.get("device_type") == "cellphone"] == []
    assert server.sandbox.quickcalls[ctx.attempt.id] == 1


async def test_follow_of_a_notice_reads_the_record_and_deletes_a_leftover_device(
        server: KazooSandboxServer, platform: KazooPlatform) -> None:
    ctx = RecordingContext(notice())
    server.sandbox.on_callflow_call = lambda call: ctx.record_arrived(announce_record(ctx, call))
    # the service stopped once the quickcall was answered: the device is still there
    stopped = asyncio.Event()

    def on_note(refs: dict[str, str]) -> None:
        if "call_ids" in refs:
            stopped.set()

    watching = WatchingContext(ctx.job, on_note)
    task = asyncio.create_task(platform.place(watching))
    await stopped.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await server.sandbox.wait_calls()
    device_id = ctx.attempt.refs["device_id"]
    assert device_id in server.sandbox.devices  # left over by the stop
    later = new_platform(server.crossbar_url)
    try:
        end = await later.follow(ctx)
    finally:
        await later.close()
    assert end.state is JobState.COMPLETED
    assert device_id not in server.sandbox.devices
    assert server.sandbox.quickcalls[ctx.attempt.id] == 1


async def test_a_notice_without_a_pivot_number_is_rejected(server: KazooSandboxServer,
                                                           log_text: io.StringIO) -> None:
    client = KazooClient(server.crossbar_url, account_id=SANDBOX_ACCOUNT_ID, username=SANDBOX_USERNAME,
                         password=SANDBOX_PASSWORD, account_name=SANDBOX_ACCOUNT_NAME, timeout=TIMEOUT)
    kazoo = KazooPlatform(client, poll_min=0.01, poll_max=0.05)
    try:
        with pytest.raises(PlatformRejectedError):
            await kazoo.place(RecordingContext(notice()))
    finally:
        await kazoo.close()
    assert SANDBOX_PASSWORD not in log_text.getvalue()


@pytest.mark.parametrize(("caller_id", "parts"), [
    ('"Key office" <5551000>', ("Key office", "5551000")),
    ("Key office <+15145551000>", ("Key office", "+15145551000")),
    ("<5551000>", ("", "5551000")),
    ("5551000", ("", "5551000")),
    ('"Key office"', ("Key office", "")),
    ("", ("", "")),
])
def test_the_caller_id_is_taken_apart_as_asterisk_reads_it(caller_id: str, parts: tuple[str, str]) -> None:
    assert caller_id_parts(caller_id) == parts
