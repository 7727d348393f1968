"""The embedded store: call records, lockout counters and announcements in one SQLite file.

It survives a restart of the service; a shared store (for several service hosts) can
implement the same two interfaces later.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import aiosqlite

from ivr.flow.records import Announcement, CallRecord

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    call_id TEXT PRIMARY KEY,
    route TEXT NOT NULL,
    caller_id TEXT NOT NULL,
    started REAL NOT NULL,
    ended REAL,
    outcome TEXT,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_started ON calls (started);
CREATE TABLE IF NOT EXISTS failures (kind TEXT NOT NULL, subject TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS failures_subject ON failures (kind, subject, at);
CREATE TABLE IF NOT EXISTS announcements (
    job_id TEXT PRIMARY KEY, created REAL NOT NULL, announcement TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS locks (
    kind TEXT NOT NULL, subject TEXT NOT NULL, until REAL NOT NULL, PRIMARY KEY (kind, subject)
);
"""


class Lockouts(Protocol):
    """Failed attempts and the locks they lead to, across calls."""

    async def is_locked(self, kind: str, subject: str) -> bool: ...

    async def add_failure(self, kind: str, subject: str, *, threshold: int, window: float, duration: float) -> bool:
        """Count one failure; True when it locks `subject` (threshold reached within window)."""
        ...


class CallRecords(Protocol):
    async def save(self, record: CallRecord) -> None: ...

    async def recent(self, limit: int = 20) -> list[CallRecord]: ...

    async def get(self, call_id: str) -> CallRecord | None: ...


class Announcements(Protocol):
    """Messages of outbound calls, each named by the job id the dialplan passes to `announce`."""

    async def add_announcement(self, announcement: Announcement) -> None: ...

    async def announcement(self, job_id: str) -> Announcement | None: ...


class SqliteStore:
    """Both interfaces over one SQLite database (WAL, so readers never wait on the writer)."""

    def __init__(self, db: aiosqlite.Connection, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    @classmethod
    async def open(cls, path: Path, clock: Callable[[], float] = time.time) -> SqliteStore:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path)
        await db.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;" + _SCHEMA)
        await db.commit()
        return cls(db, clock)

    async def close(self) -> None:
        await self._db.close()

    # -- lockouts ---------------------------------------------------------------------------

    async def is_locked(self, kind: str, subject: str) -> bool:
        async with self._db.execute(
            "SELECT 1 FROM locks WHERE kind = ? AND subject = ? AND until > ?", (kind, subject, self._clock())
        ) as cursor:
            return await cursor.fetchone() is not None

    async def add_failure(self, kind: str, subject: str, *, threshold: int, window: float, duration: float) -> bool:
        now = self._clock()
        await self._db.execute("DELETE FROM failures WHERE at <= ?", (now - window,))
        await self._db.execute("INSERT INTO failures (kind, subject, at) VALUES (?, ?, ?)", (kind, subject, now))
        async with self._db.execute(
            "SELECT COUNT(*) FROM failures WHERE kind = ? AND subject = ? AND at > ?", (kind, subject, now - window)
        ) as cursor:
            (count,) = await cursor.fetchone()  # type: ignore[misc]
        locked = count >= threshold
        if locked:
            await self._db.execute(
                "INSERT OR REPLACE INTO locks (kind, subject, until) VALUES (?, ?, ?)", (kind, subject, now + duration)
            )
            await self._db.execute("DELETE FROM failures WHERE kind = ? AND subject = ?", (kind, subject))
        await self._db.commit()
        return locked

    # -- announcements ----------------------------------------------------------------------

    async def add_announcement(self, announcement: Announcement) -> None:
        await self._db.execute(
            "INSERT OR REPLACE INTO announcements (job_id, created, announcement) VALUES (?, ?, ?)",
            (announcement.job_id, self._clock(), announcement.model_dump_json()),
        )
        await self._db.commit()

    async def announcement(self, job_id: str) -> Announcement | None:
        async with self._db.execute("SELECT announcement FROM announcements WHERE job_id = ?", (job_id,)) as cursor:
            row = await cursor.fetchone()
        return Announcement.model_validate_json(row[0]) if row else None

    # -- call records -----------------------------------------------------------------------

    async def save(self, record: CallRecord) -> None:
        await self._db.execute(
            "INSERT OR REPLACE INTO calls (call_id, route, caller_id, started, ended, outcome, record)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (record.call_id, record.route, record.caller_id, record.started, record.ended,
             record.outcome.value if record.outcome else None, record.model_dump_json()),
        )
        await self._db.commit()

    async def recent(self, limit: int = 20) -> list[CallRecord]:
        async with self._db.execute("SELECT record FROM calls ORDER BY started DESC LIMIT ?", (limit,)) as cursor:
            return [CallRecord.model_validate_json(row[0]) async for row in cursor]

    async def get(self, call_id: str) -> CallRecord | None:
        async with self._db.execute("SELECT record FROM calls WHERE call_id = ?", (call_id,)) as cursor:
            row = await cursor.fetchone()
        return CallRecord.model_validate_json(row[0]) if row else None
