"""What an outbound platform does for the runner, and what the runner gives it for one attempt.

Asterisk (AMI), ICTCore and Kazoo each implement `Platform` in `ivr.outbound.platforms`. The
runner owns the job and its states; a platform only places one attempt's call and tells how it
went. The rule every platform keeps: never a second call for one attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ivr.outbound._models import Attempt, Job, JobKind, JobState
from ivr.records import CallRecord


@dataclass(frozen=True)
class AttemptEnd:
    """How an attempt ended: `completed`, `busy`, `no_answer` or `failed`, and why (no secret in it)."""

    state: JobState
    reason: str


class AttemptContext(Protocol):
    """The runner's side of one attempt, given to the platform that places it."""

    @property
    def job(self) -> Job: ...

    @property
    def attempt(self) -> Attempt: ...

    async def note_refs(self, **refs: str) -> None:
        """Keep the platform's references to the call (ActionID, spool id...) on the attempt,
        in the store, before going on: a restart needs them to find the call again."""
        ...

    async def progress(self, state: JobState, reason: str = "") -> None:
        """The call is `ringing` or `answered`: kept in the job's history."""
        ...

    async def announced(self, timeout: float) -> CallRecord | None:
        """The record of the `announce` route's call for this attempt, waiting up to `timeout`
        seconds for it; None when no such call has ended."""
        ...


class Platform(Protocol):
    """One way of placing calls: Asterisk over AMI, ICTCore, Kazoo."""

    name: str
    kinds: frozenset[JobKind]

    async def start(self) -> None:
        """Connect and check the credentials. A wrong secret is a `SettingsError` naming the setting;
        a platform that cannot be reached now is not an error (jobs wait for it)."""
        ...

    async def close(self) -> None: ...

    def status(self) -> str:
        """A word for `/healthz`: `connected`, `disconnected` (calls wait), or `ready` for a
        platform asked per request (ICTCore)."""
        ...

    async def place(self, ctx: AttemptContext) -> AttemptEnd:
        """Place the attempt's call and follow it to its end.

        Raises `PlatformUnavailableError` only when no call was placed (the job then waits
        without counting an attempt), `PlatformRejectedError` when the platform refused the
        call's data. Once the call may have been placed, it never raises for a lost
        connection: it finds the call again, as `follow` does.
        """
        ...

    async def follow(self, ctx: AttemptContext) -> AttemptEnd:
        """After a restart: find what became of an attempt that was in flight, from its refs,
        and follow it to its end if it is still going. Never places a call."""
        ...
