"""The one way in for jobs: submit, look up, list, cancel. The HTTP API and the CLI both use it,
so a request is checked by the same rules whichever way it came."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from ivr.errors import JobInputError, JobNotFoundError
from ivr.outbound._models import IN_FLIGHT_STATES, Job, JobKind, JobRequest, JobState, new_job_id
from ivr.outbound._store import JobStore
from ivr.settings import Settings

IDEMPOTENCY_SECONDS = 24 * 3600
MAX_PAGE = 200

KINDS: dict[str, frozenset[JobKind]] = {
    "asterisk": frozenset({JobKind.NOTICE, JobKind.BRIDGE}),
    "ictcore": frozenset({JobKind.NOTICE}),
    "kazoo": frozenset({JobKind.NOTICE, JobKind.BRIDGE}),
}
"""What each platform can place: ICTCore has no bridge."""


def configured_platforms(settings: Settings) -> dict[str, str]:
    """The platforms this line can use, and for the others why not (what a 422 says)."""
    return {
        "asterisk": "",
        "ictcore": "" if settings.ictcore_url else "ICTCore is not configured on this line (IVR_ICTCORE_URL)",
        "kazoo": "" if settings.kazoo_url else "Kazoo is not configured on this line (IVR_KAZOO_URL)",
    }


def refused_kinds(settings: Settings) -> dict[str, dict[JobKind, str]]:
    """For each platform, the kinds this line cannot place through it and why (what a 422 says):
    refused when asked, rather than kept to fail at the first attempt."""
    refused = {via: {kind: f"a {kind.value} cannot be placed via {via}" for kind in JobKind if kind not in kinds}
               for via, kinds in KINDS.items()}
    if not settings.kazoo_notice_number:
        refused["kazoo"][JobKind.NOTICE] = ("a notice cannot be placed via kazoo: no callflow number for notices "
                                            "on this line (IVR_KAZOO_NOTICE_NUMBER)")
    return refused


class Outbound:
    """Jobs as clients see them. `on_submit` callbacks wake the runner of this process; `on_final`
    ones see each job a cancel here makes final (the runner's `on_final` see the others), so each
    final job is counted once."""

    def __init__(self, store: JobStore, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._platforms = configured_platforms(settings)
        self._refused = refused_kinds(settings)
        self.on_submit: list[Callable[[Job], None]] = []
        self.on_final: list[Callable[[Job], None]] = []

    async def submit(self, data: Mapping[str, Any], idempotency_key: str | None = None) -> tuple[Job, bool]:
        """Check and keep a job; (the job, True when new). An idempotency key used within 24 h
        gives back its job (False) — or `JobConflictError` when the request differs.

        Raises `JobInputError` for the first broken rule; nothing is stored then.
        """
        body = dict(data)
        if idempotency_key is not None:
            if body.get("idempotency_key") not in (None, idempotency_key):
                raise JobInputError("idempotency_key", "differs from the Idempotency-Key header")
            body["idempotency_key"] = idempotency_key
        request, via, language = self.check(body)
        now = self._clock()
        not_before = request.not_before.timestamp() if request.not_before else None
        job = Job(
            id=new_job_id(now), kind=request.kind, to=request.to, message=request.message, code=request.code,
            language=language, agent=request.agent, via=via, idempotency_key=request.idempotency_key,
            not_before=not_before, max_attempts=request.max_attempts or self._settings.outbound_max_attempts,
            created=now, updated=now, due=max(now, not_before or now),
        )
        fingerprint = request.fingerprint() if request.idempotency_key else None
        kept, created = await self._store.add_job(job, fingerprint, now - IDEMPOTENCY_SECONDS)
        if created:
            for wake in self.on_submit:
                wake(kept)
        return kept, created

    def check(self, data: Mapping[str, Any]) -> tuple[JobRequest, str, str]:
        """The request, its platform and its language, by every rule of this line; nothing is
        stored. `JobInputError` for the first broken rule: a caller asks this before work the job
        would need (`ivr outbound code` before KimVoice)."""
        request = JobRequest.check(data)
        via = request.via or self._settings.outbound_via
        if why := self._platforms.get(via):
            raise JobInputError("via", why)
        if why := self._refused[via].get(request.kind):
            raise JobInputError("kind", why)
        languages = self._settings.languages
        language = request.language or languages[0]
        if language not in languages:
            raise JobInputError("language", f"must be one of {', '.join(languages)}")
        return request, via, language

    async def get(self, job_id: str) -> Job:
        job = await self._store.job(job_id) if _plausible_id(job_id) else None
        if job is None:
            raise JobNotFoundError(f"no job {job_id[:40]!r}")
        return job

    async def list(
        self, state: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[Job], str | None]:
        """A page of jobs, newest first, and the cursor of the next page (None at the end)."""
        try:
            wanted = JobState(state) if state else None
        except ValueError:
            raise JobInputError("status", f"must be one of {', '.join(s.value for s in JobState)}") from None
        if not 1 <= limit <= MAX_PAGE:
            raise JobInputError("limit", f"must be 1 to {MAX_PAGE}")
        if cursor is not None and not _plausible_id(cursor):
            raise JobInputError("cursor", "is not a cursor this API gave")
        jobs = await self._store.jobs(state=wanted, limit=limit + 1, before=cursor)
        more = len(jobs) > limit
        jobs = jobs[:limit]
        return jobs, jobs[-1].id if more else None

    async def cancel(self, job_id: str) -> Job:
        """A queued job is `cancelled` at once; one in flight is not tried again after its call
        (the call goes on). A final job is left as it is."""
        job = await self.get(job_id)
        if job.state is JobState.QUEUED:
            cancelled = await self._store.transition(
                job_id, JobState.CANCELLED, "cancelled on request", only_from={JobState.QUEUED}
            )
            if cancelled is not None:
                for observe in self.on_final:
                    observe(cancelled)
                return cancelled
            job = await self.get(job_id)  # the runner took it meanwhile
        if job.state in IN_FLIGHT_STATES:
            await self._store.request_cancel(job_id)
        return await self.get(job_id)


def _plausible_id(value: str) -> bool:
    return len(value) == 26 and value.isalnum() and value.isascii()
