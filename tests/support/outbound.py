"""A stand-in for the runner's side of one attempt, for tests of a platform on its own.

It keeps what the platform reported (refs, states) and lets a test hand it the `announce`
route's record, as the runner does when that call ends.
"""

from __future__ import annotations

import asyncio
import time

from ivr.outbound import Attempt, Job, JobKind, JobState, new_job_id
from ivr.records import CallRecord


def make_job(kind: JobKind = JobKind.NOTICE, *, to: str = "5551234", via: str = "asterisk",
             message: str | None = "Your showing at 12 Elm Street is confirmed.", code: str | None = None,
             agent: str | None = None, language: str = "en", attempts: int = 1) -> Job:
    now = time.time()
    job = Job(id=new_job_id(now), kind=kind, to=to, message=message if kind is JobKind.NOTICE else None,
              code=code, language=language, agent=agent, via=via, max_attempts=3,
              state=JobState.DIALING, created=now, updated=now, due=now, attempts_used=attempts)
    job.attempts = [Attempt(job_id=job.id, number=n, platform=via, started=now) for n in range(1, attempts + 1)]
    return job


class RecordingContext:
    """`ivr.outbound.AttemptContext` over one job's last attempt, in memory."""

    def __init__(self, job: Job) -> None:
        self._job = job
        self.states: list[tuple[JobState, str]] = []
        self._records: dict[str, CallRecord] = {}
        self._arrived = asyncio.Event()

    @property
    def job(self) -> Job:
        return self._job

    @property
    def attempt(self) -> Attempt:
        attempt = self._job.current_attempt
        assert attempt is not None
        return attempt

    async def note_refs(self, **refs: str) -> None:
        self.attempt.refs.update(refs)

    async def progress(self, state: JobState, reason: str = "") -> None:
        self.states.append((state, reason))
        self.attempt.state = state

    def record_arrived(self, record: CallRecord) -> None:
        """What the runner does when an `announce` call of this attempt ends."""
        if record.attempt_id:
            self._records[record.attempt_id] = record
            self._arrived.set()

    async def announced(self, timeout: float) -> CallRecord | None:
        deadline = asyncio.get_running_loop().time() + timeout
        while self.attempt.id not in self._records:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return None
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                return None
        return self._records[self.attempt.id]
