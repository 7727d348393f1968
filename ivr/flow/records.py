"""The interfaces of where the flow keeps call records and finds announcements.

The flow owns them; `ivr.store.SqliteStore` implements them. The models themselves
(`CallRecord`, `Announcement`, `Outcome`...) live in the neutral `ivr.records`.
"""

from __future__ import annotations

from typing import Protocol

from ivr.records import Announcement, CallRecord

__all__ = ["Announcements", "CallRecords"]


class CallRecords(Protocol):
    """Where call records are kept (`ivr.store.SqliteStore`, or a shared store later)."""

    async def save(self, record: CallRecord) -> None: ...

    async def recent(self, limit: int = 20) -> list[CallRecord]: ...

    async def get(self, call_id: str) -> CallRecord | None: ...


class Announcements(Protocol):
    """What outbound calls say: the message of a job still going, named by the job id the
    dialplan passes to `announce` (the outbound jobs in the store)."""

    async def announcement(self, job_id: str) -> Announcement | None: ...
