"""The runner: places due jobs under each platform's limits, follows every attempt to its end,
and retries by the contract.

Its rules, in the order they protect someone:
- Never a second call for one attempt. A job is claimed (`queued` → `dialing`, the attempt
  kept) in one conditional write before its call is placed; after a restart every attempt
  still in flight is handed to its platform's `follow`, which finds the call again and never
  places one, before the loop looks at anything else.
- One runner per store: a lease row, renewed every few seconds, keeps a second `ivr serve` on
  the same data directory from placing the same jobs.
- A platform that cannot be reached costs no attempt; after `unavailable_limit` seconds of
  that the job is `failed`.
- `notice` jobs ring only within calling hours; `bridge` jobs at once (an agent asked).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime

from ivr.errors import PlatformRejectedError, PlatformUnavailableError, StoreError
from ivr.logging import get_logger
from ivr.outbound._hours import CallingHours
from ivr.outbound._models import IN_FLIGHT_STATES, RETRIED_STATES, Attempt, Job, JobKind, JobState
from ivr.outbound._platform import AttemptEnd, Platform
from ivr.outbound._store import JobStore
from ivr.records import CallRecord

log = get_logger("ivr.outbound")

LEASE_SECONDS = 10.0
"""A lease not renewed for this long is another service's to take (after a crash)."""
BEAT_SECONDS = 2.0
UNAVAILABLE_BACKOFF = (5.0, 60.0)
"""First and longest wait before trying a platform that could not be reached."""
REASON_LIMIT = 300
DUE_MARGIN = 50
"""Due jobs read beyond a platform's free slots: those it only moves on (cancelled, waiting for
calling hours) do not take a slot's turn in one pass."""


class Runner:
    def __init__(
        self, store: JobStore, platforms: Mapping[str, Platform], *, hours: CallingHours, max_active: int,
        rate: float, retry_seconds: float, unavailable_limit: float = 900.0, poll_interval: float = 0.5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self.platforms = dict(platforms)
        self._hours = hours
        self._max_active = max_active
        self._retry_seconds = retry_seconds
        self._unavailable_limit = unavailable_limit
        self._poll = poll_interval
        self._clock = clock
        self._buckets = {name: _Bucket(rate) for name in self.platforms}
        self.active = dict.fromkeys(self.platforms, 0)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._paused = False
        self._holding = False
        self._beat_at = 0.0
        self._reconciled = False
        self._loop: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._records: dict[str, asyncio.Event] = {}
        self.on_final: list[Callable[[Job], None]] = []
        self.on_active: list[Callable[[str, int], None]] = []

    # -- life ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every platform (a refused login stops the service here), then the loop."""
        for platform in self.platforms.values():
            await platform.start()
        self._loop = asyncio.get_running_loop().create_task(self._run())

    async def settle(self, timeout: float) -> None:
        """Wait (at most `timeout` s) for the calls in progress to end, placing no new one: their
        callees' `announce` calls still reach this service, so none is lost to a restart."""
        self._paused = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._idle.wait()

    async def stop(self) -> None:
        """Stop following calls: jobs in flight stay so in the store and the next start
        accounts for them. Then close the platforms and give the lease up."""
        self._paused = True
        tasks = [t for t in (self._loop, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for platform in self.platforms.values():
            await platform.close()
        if self._holding:
            with contextlib.suppress(StoreError):
                await self._store.release_runner(self.owner)

    def status(self) -> dict[str, object]:
        """For `/healthz`: each platform's state and calls in progress, and whether this service
        runs the jobs (another one on the same store may hold the lease)."""
        return {
            "runner": "running" if self._holding else "standby",
            "platforms": {name: {"state": platform.status(), "active_calls": self.active.get(name, 0)}
                          for name, platform in self.platforms.items()},
        }

    def wake(self, _: object = None) -> None:
        """Look at the queue now (a job was just submitted in this process)."""
        self._wake.set()

    async def on_record(self, record: CallRecord) -> None:
        """A record sink, after the store's: an `announce` call of an attempt has ended."""
        if record.attempt_id and (event := self._records.get(record.attempt_id)):
            event.set()

    # -- the loop ------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                if await self._hold_lease():
                    if not self._reconciled:
                        await self._reconcile()
                        self._reconciled = True
                    if not self._paused:
                        await self._place_due()
            except StoreError as exc:
                log.error("outbound.store_failed", error=str(exc))
            # not wait_for: on 3.11 it can swallow the cancel of `stop` (gh-86296)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll):
                    await self._wake.wait()
            self._wake.clear()

    async def _hold_lease(self) -> bool:
        now = self._clock()
        if self._holding and now - self._beat_at < BEAT_SECONDS:
            return True
        held = await self._store.claim_runner(self.owner, now, LEASE_SECONDS)
        if held != self._holding:
            if held:
                log.info("outbound.runner_started", owner=self.owner)
            else:
                log.error("outbound.runner_standby", reason="another service runs the jobs of this store")
        elif not held and self._beat_at == 0.0:
            log.warning("outbound.runner_standby", reason="another service runs the jobs of this store")
        self._holding, self._beat_at = held, now
        return held

    async def _reconcile(self) -> None:
        """Every attempt that was in flight when the service stopped goes to its platform's
        `follow` before any other job is placed."""
        for job in await self._store.in_flight_jobs():
            attempt = job.current_attempt
            platform = self.platforms.get(attempt.platform) if attempt else None
            if attempt is None or platform is None:
                await self._finish(job, attempt, AttemptEnd(
                    JobState.FAILED, f"outcome unknown: {job.via} is not configured on this line any more"))
                continue
            log.info("outbound.reconciling", job_id=job.id, attempt=attempt.number, via=attempt.platform)
            self._spawn(job, attempt, platform, place=False)

    async def _place_due(self) -> None:
        now = self._clock()
        # jobs via a platform this line no longer has: they fail, and nothing else would read them
        for job in await self._store.due_jobs(now, DUE_MARGIN, not_via=self.platforms):
            await self._consider(job, None, now)
        # each platform with room reads its own due jobs: one at its limit never hides another's
        for name, platform in self.platforms.items():
            free = self._max_active - self.active[name]
            if free > 0:
                for job in await self._store.due_jobs(now, free + DUE_MARGIN, via=name):
                    await self._consider(job, platform, now)

    async def _consider(self, job: Job, platform: Platform | None, now: float) -> None:
        """Place one due job if its platform's limits allow, or move it on."""
        if job.cancel_requested:  # asked just as its last attempt went back to the queue: never claimed again
            await self._end(job, JobState.CANCELLED, "cancelled on request", None, only_from={JobState.QUEUED})
            return
        if platform is None:
            await self._store.transition(job.id, JobState.FAILED, f"{job.via} is not configured on this line",
                                         only_from={JobState.QUEUED})
            return
        if job.kind is JobKind.NOTICE and not self._hours.open_at(now):
            opens = self._hours.next_open(now)
            await self._store.transition(
                job.id, JobState.QUEUED, f"waiting for calling hours ({self._hours}): next at {_iso(opens)}",
                only_from={JobState.QUEUED}, fields={"due": opens})
            return
        if self._paused:
            return  # the service began to stop during this pass: no new call
        if self.active[job.via] >= self._max_active or not self._buckets[job.via].take():
            return
        attempt = Attempt(job_id=job.id, number=len(job.attempts) + 1, platform=job.via, started=self._clock())
        claimed = await self._store.start_attempt(
            attempt, f"attempt {job.attempts_used + 1} of {job.max_attempts} via {job.via}")
        if claimed is not None:
            self._spawn(claimed, attempt, platform, place=True)

    def _spawn(self, job: Job, attempt: Attempt, platform: Platform, *, place: bool) -> None:
        self._count(attempt.platform, +1)
        task = asyncio.get_running_loop().create_task(self._attempt(job, attempt, platform, place))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _count(self, platform: str, change: int) -> None:
        self.active[platform] = self.active.get(platform, 0) + change
        if any(self.active.values()):
            self._idle.clear()
        else:
            self._idle.set()
        for observe in self.on_active:
            observe(platform, self.active[platform])

    # -- one attempt ---------------------------------------------------------------------

    async def _attempt(self, job: Job, attempt: Attempt, platform: Platform, place: bool) -> None:
        ctx = _Context(self, job, attempt)
        delay = UNAVAILABLE_BACKOFF[0]
        try:
            while True:
                try:
                    end = await (platform.place(ctx) if place else platform.follow(ctx))
                    break
                except PlatformUnavailableError as exc:
                    if place:
                        await self._not_placed(job, attempt, exc)
                        return
                    log.warning("outbound.follow_postponed", job_id=job.id, attempt=attempt.number, error=str(exc))
                    await asyncio.sleep(delay)  # the platform is asked again: nothing is placed meanwhile
                    delay = min(delay * 2, UNAVAILABLE_BACKOFF[1])
                except PlatformRejectedError as exc:
                    end = AttemptEnd(JobState.FAILED, f"{platform.name} refused the call: {exc}")
                    break
                except StoreError:
                    raise
                except Exception as exc:  # a call that may have been placed is never placed again
                    log.exception("outbound.attempt_crashed", job_id=job.id, attempt=attempt.number)
                    end = AttemptEnd(JobState.FAILED, f"outcome unknown: the service failed following the call "
                                                      f"({type(exc).__name__})")
                    break
            await self._finish(job, attempt, end)
        except StoreError as exc:
            # The job stays in flight in the store; the next start accounts for it.
            log.error("outbound.store_failed", job_id=job.id, error=str(exc))
        finally:
            self._count(attempt.platform, -1)
            self._records.pop(attempt.id, None)
            self._wake.set()

    async def _not_placed(self, job: Job, attempt: Attempt, exc: PlatformUnavailableError) -> None:
        now = self._clock()
        attempt.state, attempt.ended, attempt.reason = JobState.FAILED, now, _short(f"not placed: {exc}")
        await self._store.update_attempt(attempt)
        # read again: a cancel may have been asked during the attempt, and the attempts now
        # hold this one's reason, which the backoff counts
        job = await self._store.job(job.id) or job
        fields = {"attempts_used": job.attempts_used - 1}
        if job.cancel_requested:
            await self._end(job, JobState.CANCELLED, f"not placed: {exc}; cancelled on request", attempt.number,
                            fields=fields)
            return
        since = job.unavailable_since or now
        if now - since >= self._unavailable_limit:
            minutes = round(self._unavailable_limit / 60)
            await self._end(job, JobState.FAILED, f"{job.via} could not be reached for {minutes} minutes: {exc}",
                            attempt.number, fields=fields)
            return
        wait = _unavailable_wait(job.attempts)
        log.warning("outbound.platform_unavailable", job_id=job.id, via=job.via, error=str(exc), retry_in_s=wait)
        await self._store.transition(
            job.id, JobState.QUEUED, _short(f"{job.via} unavailable, no call placed ({exc}): next try at "
                                            f"{_iso(now + wait)}"),
            only_from=IN_FLIGHT_STATES, attempt=attempt.number,
            fields={**fields, "due": now + wait, "unavailable_since": since},
        )

    async def _finish(self, job: Job, attempt: Attempt | None, end: AttemptEnd) -> None:
        now = self._clock()
        number = attempt.number if attempt else None
        if attempt is not None:
            attempt.state, attempt.ended, attempt.reason = end.state, now, _short(end.reason)
            await self._store.update_attempt(attempt)
        current = await self._store.job(job.id) or job
        if end.state in RETRIED_STATES and current.attempts_used < current.max_attempts:
            if current.cancel_requested:
                await self._end(current, JobState.CANCELLED, f"{end.reason}; cancelled on request", number)
                return
            due = now + self._retry_seconds
            await self._store.transition(
                job.id, JobState.QUEUED,
                _short(f"attempt {current.attempts_used} of {current.max_attempts}: {end.state.value} "
                       f"({end.reason}); next try at {_iso(due)}"),
                only_from=IN_FLIGHT_STATES, attempt=number, fields={"due": due, "unavailable_since": None},
            )
            return
        await self._end(current, end.state, end.reason, number, fields={"unavailable_since": None})

    async def _end(self, job: Job, state: JobState, reason: str, attempt: int | None,
                   fields: Mapping[str, object] | None = None,
                   only_from: Collection[JobState] = IN_FLIGHT_STATES) -> None:
        final = await self._store.transition(job.id, state, _short(reason), only_from=only_from,
                                             attempt=attempt, fields=fields)
        if final is not None:
            log.info("outbound.job_final", job_id=job.id, state=state.value, attempts=final.attempts_used,
                     via=job.via)
            for observe in self.on_final:
                observe(final)


class _Context:
    """`AttemptContext` for one attempt: what a platform reports goes to the store at once."""

    def __init__(self, runner: Runner, job: Job, attempt: Attempt) -> None:
        self._runner = runner
        self._job = job
        self._attempt = attempt

    @property
    def job(self) -> Job:
        return self._job

    @property
    def attempt(self) -> Attempt:
        return self._attempt

    async def note_refs(self, **refs: str) -> None:
        self._attempt.refs.update({key: str(value)[:128] for key, value in refs.items()})
        await self._runner._store.update_attempt(self._attempt)

    async def progress(self, state: JobState, reason: str = "") -> None:
        if state not in (JobState.RINGING, JobState.ANSWERED) or state == self._attempt.state:
            return
        self._attempt.state = state
        await self._runner._store.update_attempt(self._attempt)
        await self._runner._store.transition(self._job.id, state, _short(reason or state.value),
                                             only_from=IN_FLIGHT_STATES, attempt=self._attempt.number)

    async def announced(self, timeout: float) -> CallRecord | None:
        store = self._runner._store
        event = self._runner._records.setdefault(self._attempt.id, asyncio.Event())
        records = await store.announce_records(self._attempt.id)
        if not records and timeout > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await event.wait()
            records = await store.announce_records(self._attempt.id)
        return records[-1] if records else None


class _Bucket:
    """`rate` new calls a second, a burst of at most one second's worth."""

    def __init__(self, rate: float) -> None:
        self._rate = rate
        self._burst = max(1.0, rate)
        self._tokens = self._burst
        self._last = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


def _unavailable_wait(attempts: list[Attempt]) -> float:
    """5 s after the first unplaced attempt in a row, doubling up to 60 s."""
    unplaced = 0
    for attempt in reversed(attempts):
        if not attempt.reason.startswith("not placed"):
            break
        unplaced += 1
    first, longest = UNAVAILABLE_BACKOFF
    # the exponent stops growing once the wait is at its longest: no float overflow however long it lasts
    return min(first * 2.0 ** min(unplaced - 1, 16), longest)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _short(text: str) -> str:
    return text if len(text) <= REASON_LIMIT else text[: REASON_LIMIT - 1] + "…"
