"""The runner over a real SQLite store, with a scripted platform standing for Asterisk or
ICTCore: retries by the contract, limits, calling hours, a platform that cannot be reached, and
a restart that accounts for every attempt in flight before placing anything — never a second
call for one attempt."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ivr.errors import PlatformRejectedError, PlatformUnavailableError
from ivr.outbound import Attempt, AttemptContext, AttemptEnd, CallingHours, Job, JobKind, JobState, Outbound, Runner
from ivr.settings import Settings, load_settings
from ivr.store import SqliteStore

NOTICE = {"kind": "notice", "to": "5551234", "message": "Hello."}
ALWAYS_OPEN = CallingHours("00:00-24:00", "UTC")
ANNOUNCED = AttemptEnd(JobState.COMPLETED, "announced")
Outcome = AttemptEnd | Exception | None
"""What the scripted platform does with one attempt: end so, raise, or (None) hold the call."""


class ScriptedPlatform:
    """A platform whose attempts end as scripted; it counts every call it placed."""

    name = "asterisk"
    kinds = frozenset({JobKind.NOTICE, JobKind.BRIDGE})

    def __init__(self, *outcomes: Outcome, default: Outcome = ANNOUNCED) -> None:
        self.outcomes = list(outcomes)
        self.default = default
        self.placed: list[str] = []
        self.followed: list[str] = []
        self.follow_with: AttemptEnd = AttemptEnd(JobState.COMPLETED, "found it: announced")
        self.holding = 0
        self.hold_end = AttemptEnd(JobState.COMPLETED, "announced")
        self.most_at_once = 0
        self.release = asyncio.Event()

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def status(self) -> str:
        return "ready"

    async def place(self, ctx: AttemptContext) -> AttemptEnd:
        outcome = self.outcomes.pop(0) if self.outcomes else self.default
        if isinstance(outcome, PlatformUnavailableError):
            raise outcome
        self.placed.append(ctx.attempt.id)
        await ctx.note_refs(action_id=ctx.attempt.id)
        await ctx.progress(JobState.RINGING)
        if isinstance(outcome, Exception):
            raise outcome
        if outcome is None:
            return await self._hold()
        return outcome

    async def follow(self, ctx: AttemptContext) -> AttemptEnd:
        self.followed.append(ctx.attempt.id)
        return self.follow_with

    async def _hold(self) -> AttemptEnd:
        self.holding += 1
        self.most_at_once = max(self.most_at_once, self.holding)
        try:
            await self.release.wait()
        finally:
            self.holding -= 1
        return self.hold_end


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = await SqliteStore.open(tmp_path / "calls.db")
    yield store
    await store.close()


@pytest.fixture
def jobs(store: SqliteStore, tmp_path: Path) -> Outbound:
    return Outbound(store, load_settings(data_dir=tmp_path))


def make_runner(store: SqliteStore, platform: ScriptedPlatform, **options: Any) -> Runner:
    values: dict[str, Any] = {"hours": ALWAYS_OPEN, "max_active": 10, "rate": 100, "retry_seconds": 0.01,
                              "poll_interval": 0.02, **options}
    return Runner(store, {"asterisk": platform}, **values)


async def until(check: Callable[[], Any], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.01)


async def final(jobs: Outbound, job_id: str) -> Job:
    async def done() -> bool:
        return (await jobs.get(job_id)).final
    await until(done)
    return await jobs.get(job_id)


async def test_a_job_goes_dialing_ringing_completed_and_its_code_is_erased(store: SqliteStore, jobs: Outbound) -> None:
    platform = ScriptedPlatform()
    runner = make_runner(store, platform)
    await runner.start()
    try:
        job, _ = await jobs.submit({**NOTICE, "code": "4384341"})
        runner.wake()
        done = await final(jobs, job.id)
    finally:
        await runner.stop()
    assert [e.state for e in done.history] == [JobState.QUEUED, JobState.DIALING, JobState.RINGING,
                                               JobState.COMPLETED]
    assert done.code is None and done.attempts_used == 1
    assert done.attempts[0].refs == {"action_id": f"{job.id}-1"}
    assert platform.placed == [f"{job.id}-1"]


async def test_busy_and_no_answer_are_retried_up_to_max_attempts(store: SqliteStore, jobs: Outbound) -> None:
    platform = ScriptedPlatform(AttemptEnd(JobState.BUSY, "busy"), AttemptEnd(JobState.NO_ANSWER, "no answer"),
                                AttemptEnd(JobState.BUSY, "busy"))
    runner = make_runner(store, platform)
    await runner.start()
    try:
        job, _ = await jobs.submit(NOTICE)
        done = await final(jobs, job.id)
    finally:
        await runner.stop()
    assert done.state is JobState.BUSY
    assert done.attempts_used == 3 and len(platform.placed) == 3
    retries = [e.reason for e in done.history if e.state is JobState.QUEUED][1:]
    assert retries[0].startswith("attempt 1 of 3: busy (busy); next try at ")
    assert retries[1].startswith("attempt 2 of 3: no_answer")


async def test_failed_is_not_retried(store: SqliteStore, jobs: Outbound) -> None:
    platform = ScriptedPlatform(PlatformRejectedError("412 invalid data"))
    runner = make_runner(store, platform)
    await runner.start()
    try:
        job, _ = await jobs.submit(NOTICE)
        done = await final(jobs, job.id)
    finally:
        await runner.stop()
    assert done.state is JobState.FAILED and "412 invalid data" in done.reason
    assert len(platform.placed) == 1


async def test_a_platform_down_costs_no_attempt_and_the_job_waits(
    store: SqliteStore, jobs: Outbound, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ivr.outbound._runner.UNAVAILABLE_BACKOFF", (0.01, 0.02))
    platform = ScriptedPlatform(PlatformUnavailableError("connection refused"),
                                PlatformUnavailableError("connection refused"))
    runner = make_runner(store, platform)
    await runner.start()
    try:
        job, _ = await jobs.submit(NOTICE)
        done = await final(jobs, job.id)
    finally:
        await runner.stop()
    assert done.state is JobState.COMPLETED
    assert done.attempts_used == 1 and len(platform.placed) == 1
    assert [a.reason.startswith("not placed") for a in done.attempts] == [True, True, False]
    assert done.unavailable_since is None


async def test_fifteen_minutes_unreachable_fails_the_job(store: SqliteStore, jobs: Outbound) -> None:
    platform = ScriptedPlatform(default=PlatformUnavailableError("connection refused"))
    runner = make_runner(store, platform, unavailable_limit=0.0)
    await runner.start()
    try:
        job, _ = await jobs.submit(NOTICE)
        done = await final(jobs, job.id)
    finally:
        await runner.stop()
    assert done.state is JobState.FAILED
    assert "could not be reached" in done.reason and done.attempts_used == 0


async def test_no_more_than_max_active_calls_at_once(store: SqliteStore, jobs: Outbound) -> None:
    platform = ScriptedPlatform(default=None)
    runner = make_runner(store, platform, max_active=3)
    await runner.start()
    try:
        made = [(await jobs.submit(NOTICE))[0].id for _ in range(7)]

        async def three_holding() -> bool:
            return platform.holding == 3
        await until(three_holding)
        await asyncio.sleep(0.1)  # several polls: none beyond the limit starts
        assert len(platform.placed) == 3
        platform.release.set()
        for job_id in made:
            assert (await final(jobs, job_id)).state is JobState.COMPLETED
    finally:
        await runner.stop()
    assert platform.most_at_once == 3 and len(platform.placed) == 7


async def test_a_notice_waits_for_calling_hours_a_bridge_does_not(store: SqliteStore, jobs: Outbound) -> None:
    now = datetime.now(UTC)
    start, end = now + timedelta(hours=2), now + timedelta(hours=3)
    closed = CallingHours(f"{start:%H}:00-{end:%H}:00", "UTC")
    platform = ScriptedPlatform()
    runner = make_runner(store, platform, hours=closed)
    await runner.start()
    try:
        notice, _ = await jobs.submit(NOTICE)
        bridge, _ = await jobs.submit({"kind": "bridge", "to": "5551234", "agent": "PJSIP/agent1"})
        assert (await final(jobs, bridge.id)).state is JobState.COMPLETED

        async def waiting() -> bool:
            return "calling hours" in (await jobs.get(notice.id)).reason
        await until(waiting)
    finally:
        await runner.stop()
    held = await jobs.get(notice.id)
    assert held.state is JobState.QUEUED and platform.placed == [f"{bridge.id}-1"]
    assert held.due == closed.next_open(held.updated)


async def test_a_restart_follows_every_attempt_in_flight_and_places_none_again(
    store: SqliteStore, jobs: Outbound
) -> None:
    first = ScriptedPlatform(default=None)
    runner = make_runner(store, first)
    await runner.start()
    made = [(await jobs.submit(NOTICE))[0].id for _ in range(3)]

    async def all_ringing() -> bool:
        return first.holding == 3
    await until(all_ringing)
    await runner.stop()  # the service stops with three calls ringing
    assert {(await jobs.get(j)).state for j in made} == {JobState.RINGING}

    second = ScriptedPlatform()
    second.follow_with = AttemptEnd(JobState.NO_ANSWER, "not answered (no call found after the restart)")
    again = make_runner(store, second)
    await again.start()
    try:
        ended = [await final(jobs, j) for j in made]
    finally:
        await again.stop()
    assert sorted(second.followed) == sorted(f"{j}-1" for j in made)
    # each was then retried as a new attempt, and only as that
    assert sorted(second.placed) == sorted(f"{j}-2" for j in made)
    assert all(j.state is JobState.COMPLETED and j.attempts_used == 2 for j in ended)


async def test_a_second_runner_on_the_same_store_stands_by(store: SqliteStore, jobs: Outbound) -> None:
    one, two = ScriptedPlatform(), ScriptedPlatform()
    first, second = make_runner(store, one), make_runner(store, two)
    await first.start()
    await second.start()
    try:
        made = [(await jobs.submit(NOTICE))[0].id for _ in range(5)]
        for job_id in made:
            await final(jobs, job_id)
    finally:
        await second.stop()
        await first.stop()
    assert len(one.placed) == 5 and two.placed == []


async def test_a_crash_while_following_fails_the_job_without_a_second_call(
    store: SqliteStore, jobs: Outbound
) -> None:
    platform = ScriptedPlatform(RuntimeError("bug"))
    runner = make_runner(store, platform)
    await runner.start()
    try:
        job, _ = await jobs.submit(NOTICE)
        done = await final(jobs, job.id)
    finally:
        await runner.stop()
    assert done.state is JobState.FAILED and done.reason.startswith("outcome unknown")
    assert len(platform.placed) == 1


async def cancelled_while_held(store: SqliteStore, jobs: Outbound, platform: ScriptedPlatform) -> Job:
    """A notice whose first attempt `platform` holds; cancelled then, and released: the job at its end."""
    runner = make_runner(store, platform)
    await runner.start()
    try:
        job, _ = await jobs.submit(NOTICE)

        async def holding() -> bool:
            return platform.holding == 1
        await until(holding)
        assert (await jobs.cancel(job.id)).cancel_requested
        platform.release.set()
        return await final(jobs, job.id)
    finally:
        await runner.stop()


async def test_cancel_during_a_call_stops_the_retries(store: SqliteStore, jobs: Outbound) -> None:
    platform = ScriptedPlatform(None, default=AttemptEnd(JobState.BUSY, "busy"))
    platform.hold_end = AttemptEnd(JobState.BUSY, "busy")
    done = await cancelled_while_held(store, jobs, platform)
    assert done.state is JobState.CANCELLED and done.reason == "busy; cancelled on request"
    assert len(platform.placed) == 1


async def test_a_cancel_during_an_attempt_never_placed_ends_the_job_cancelled(
    store: SqliteStore, jobs: Outbound
) -> None:
    class SlowToFail(ScriptedPlatform):
        """Slow to connect, then unreachable: no call was placed."""

        async def place(self, ctx: AttemptContext) -> AttemptEnd:
            await self._hold()
            raise PlatformUnavailableError("connection refused")

    done = await cancelled_while_held(store, jobs, SlowToFail())
    assert done.state is JobState.CANCELLED
    assert done.reason == "not placed: connection refused; cancelled on request"
    assert done.history[-1].state is JobState.CANCELLED and done.attempts_used == 0
    assert JobState.QUEUED not in [e.state for e in done.history[1:]]


async def test_an_unreachable_platform_is_tried_again_after_waits_that_double_up_to_a_minute(
    store: SqliteStore, jobs: Outbound
) -> None:
    platform = ScriptedPlatform(default=PlatformUnavailableError("connection refused"))
    now = [time.time() + 1]
    runner = make_runner(store, platform, clock=lambda: now[0])
    job, _ = await jobs.submit(NOTICE)
    waits: list[float] = []
    await runner.start()
    try:
        for tries in range(1, 8):
            async def back_in_queue(tries: int = tries) -> bool:
                seen = await jobs.get(job.id)
                return seen.state is JobState.QUEUED and len(seen.attempts) == tries
            await until(back_in_queue)
            waiting = await jobs.get(job.id)
            waits.append(waiting.due - now[0])
            now[0] = waiting.due  # the clock reaches the next try
            runner.wake()
    finally:
        await runner.stop()
    assert waits == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0, 60.0]
    assert waiting.attempts_used == 0 and waiting.reason.startswith("asterisk unavailable, no call placed")


async def test_a_job_back_in_the_queue_with_a_cancel_asked_is_cancelled_not_stuck(
    store: SqliteStore, jobs: Outbound
) -> None:
    # the cancel came between the runner's last look at the job and its return to the queue
    # (or a store written before this was fixed)
    job, _ = await jobs.submit(NOTICE)
    await store.start_attempt(Attempt(job_id=job.id, number=1, platform="asterisk", started=time.time()), "try")
    await jobs.cancel(job.id)
    await store.transition(job.id, JobState.QUEUED, "asterisk unavailable", only_from={JobState.DIALING})
    platform = ScriptedPlatform()
    runner = make_runner(store, platform)
    await runner.start()
    try:
        done = await final(jobs, job.id)
    finally:
        await runner.stop()
    assert done.state is JobState.CANCELLED and done.reason == "cancelled on request"
    assert platform.placed == []


def with_kazoo(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path, kazoo_url="http://127.0.0.1:9/v2", kazoo_api_key="k" * 20)


async def test_a_platform_at_its_limit_does_not_hold_back_a_bridge_via_an_idle_one(
    store: SqliteStore, tmp_path: Path
) -> None:
    jobs = Outbound(store, with_kazoo(tmp_path))
    asterisk, kazoo = ScriptedPlatform(default=None), ScriptedPlatform()
    kazoo.name = "kazoo"
    runner = Runner(store, {"asterisk": asterisk, "kazoo": kazoo}, hours=ALWAYS_OPEN, max_active=10, rate=100,
                    retry_seconds=0.01, poll_interval=0.02)
    for _ in range(80):  # a backlog well beyond what Asterisk may ring at once
        await jobs.submit({**NOTICE, "via": "asterisk"})
    await runner.start()
    try:
        async def asterisk_full() -> bool:
            return asterisk.holding == 10
        await until(asterisk_full)
        bridge, _ = await jobs.submit({"kind": "bridge", "via": "kazoo", "to": "5551234", "agent": "user:abc"})
        runner.wake()
        done = await final(jobs, bridge.id)
    finally:
        await runner.stop()
    assert done.state is JobState.COMPLETED and kazoo.placed == [f"{bridge.id}-1"]
    assert len(asterisk.placed) == 10 and asterisk.most_at_once == 10


async def test_a_job_via_a_platform_no_longer_configured_fails(store: SqliteStore, tmp_path: Path) -> None:
    jobs = Outbound(store, with_kazoo(tmp_path))
    job, _ = await jobs.submit({"kind": "bridge", "via": "kazoo", "to": "5551234", "agent": "user:abc"})
    platform = ScriptedPlatform()
    runner = make_runner(store, platform)  # restarted without Kazoo
    await runner.start()
    try:
        done = await final(jobs, job.id)
    finally:
        await runner.stop()
    assert done.state is JobState.FAILED and done.reason == "kazoo is not configured on this line"
    assert platform.placed == []
