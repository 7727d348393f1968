"""Where jobs are kept: the interface the outbound side owns (`ivr.store.SqliteStore` implements it).

Every change of state is one conditional write (`... WHERE state IN (...)`), so that the runner,
an API request and the CLI in another process can act on one job without a check and an act
coming apart: a cancel and a claim of the same queued job cannot both win.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Protocol

from ivr.outbound._models import Attempt, Job, JobState
from ivr.records import CallRecord


class JobStore(Protocol):
    async def add_job(self, job: Job, fingerprint: str | None, since: float) -> tuple[Job, bool]:
        """Keep a new job; (the job, True). With an idempotency key already used since `since`:
        (that job, False) when `fingerprint` matches, else `JobConflictError`."""
        ...

    async def job(self, job_id: str) -> Job | None: ...

    async def jobs(self, *, state: JobState | None, limit: int, before: str | None) -> list[Job]:
        """Newest first; `before`: only jobs with a smaller id (the cursor of the next page)."""
        ...

    async def due_jobs(
        self, now: float, limit: int, *, via: str | None = None, not_via: Collection[str] = ()
    ) -> list[Job]:
        """Queued jobs whose time has come, the longest-waiting first; only those to be placed
        via `via` when given, and none via a platform in `not_via`."""
        ...

    async def in_flight_jobs(self) -> list[Job]:
        """Jobs `dialing`, `ringing` or `answered`: what a restart must account for."""
        ...

    async def transition(
        self, job_id: str, state: JobState, reason: str, *, only_from: Collection[JobState],
        attempt: int | None = None, fields: Mapping[str, Any] | None = None,
    ) -> Job | None:
        """Move a job to `state` if it is in one of `only_from`, noting the change in its history
        and setting `fields` (columns of the job) in the same write; the job after, or None when
        it was not in one of those states. A final state erases the code."""
        ...

    async def start_attempt(self, attempt: Attempt, reason: str) -> Job | None:
        """Claim a queued job for a new attempt: `dialing`, one more attempt counted, the attempt
        kept — or None when the job was no longer queued (cancelled meanwhile)."""
        ...

    async def update_attempt(self, attempt: Attempt) -> None:
        """Keep an attempt's state, end, reason and refs."""
        ...

    async def request_cancel(self, job_id: str) -> bool:
        """Mark a job in flight so that it is not tried again; whether it was in flight."""
        ...

    async def announce_records(self, attempt_id: str) -> list[CallRecord]:
        """Records of the `announce` calls that delivered this attempt."""
        ...

    async def claim_runner(self, owner: str, now: float, stale_after: float) -> bool:
        """Hold (or renew) the one runner lease of this store; False while another live owner holds it."""
        ...

    async def release_runner(self, owner: str) -> None: ...

    async def runner_alive(self, now: float, stale_after: float) -> bool:
        """Whether some service is running the jobs of this store now."""
        ...

    async def purge_jobs(self, before: float, keys_before: float) -> int:
        """Drop final jobs last changed before `before` and idempotency keys made before
        `keys_before`; the number of jobs dropped."""
        ...
