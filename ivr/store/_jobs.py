"""Outbound jobs in the embedded store (`ivr.outbound.JobStore`): jobs, their history, their
attempts, idempotency keys and the runner's lease.

The CLI writes jobs from its own process while `ivr serve` runs them: every change of state
is one conditional UPDATE in one transaction, and SQLite serialises writers across processes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import aiosqlite

from ivr.errors import JobConflictError, StoreError
from ivr.outbound import FINAL_STATES, Attempt, HistoryEntry, Job, JobState
from ivr.records import Announcement, CallRecord

JOBS_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    to_number TEXT NOT NULL,
    message TEXT,
    code TEXT,
    language TEXT NOT NULL,
    agent TEXT,
    via TEXT NOT NULL,
    idempotency_key TEXT,
    not_before REAL,
    max_attempts INTEGER NOT NULL,
    state TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    due REAL NOT NULL,
    attempts_used INTEGER NOT NULL DEFAULT 0,
    unavailable_since REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (state, due);
CREATE INDEX IF NOT EXISTS jobs_due_via ON jobs (state, via, due);
CREATE TABLE IF NOT EXISTS job_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL, at REAL NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL, attempt INTEGER
);
CREATE INDEX IF NOT EXISTS job_history_job ON job_history (job_id, id);
CREATE TABLE IF NOT EXISTS job_attempts (
    job_id TEXT NOT NULL, number INTEGER NOT NULL, platform TEXT NOT NULL, state TEXT NOT NULL,
    started REAL NOT NULL, ended REAL, reason TEXT NOT NULL DEFAULT '', refs TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (job_id, number)
);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key TEXT PRIMARY KEY, job_id TEXT NOT NULL, fingerprint TEXT NOT NULL, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS outbound_runner (name TEXT PRIMARY KEY, owner TEXT NOT NULL, beat REAL NOT NULL);
"""

MAX_HISTORY = 200
"""Entries a job keeps: a platform down for hours must not grow one job without bound."""

_COLUMNS = ("id", "kind", "to_number", "message", "code", "language", "agent", "via", "idempotency_key",
            "not_before", "max_attempts", "state", "created", "updated", "due", "attempts_used",
            "unavailable_since", "cancel_requested", "reason")
_SETTABLE = frozenset({"due", "attempts_used", "unavailable_since", "reason"})
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM jobs"
_FINAL = tuple(state.value for state in FINAL_STATES)


class JobTables:
    """The job methods of `SqliteStore`: it provides `_db`, `_clock` and `_writing`."""

    _db: aiosqlite.Connection
    _clock: Callable[[], float]
    _writing: Callable[[str], AbstractAsyncContextManager[aiosqlite.Connection]]

    async def add_job(self, job: Job, fingerprint: str | None, since: float) -> tuple[Job, bool]:
        async with self._writing("keep a job") as db:
            if job.idempotency_key is not None and fingerprint is not None:
                key = job.idempotency_key
                await db.execute("DELETE FROM idempotency_keys WHERE key = ? AND created < ?", (key, since))
                cursor = await db.execute(
                    "INSERT OR IGNORE INTO idempotency_keys (key, job_id, fingerprint, created) VALUES (?, ?, ?, ?)",
                    (key, job.id, fingerprint, job.created),
                )
                if cursor.rowcount == 0:
                    async with db.execute(
                        "SELECT job_id, fingerprint FROM idempotency_keys WHERE key = ?", (key,)
                    ) as rows:
                        row = await rows.fetchone()
                    assert row is not None
                    if row[1] != fingerprint:
                        raise JobConflictError("this Idempotency-Key was used for another request")
                    existing = await self._read_job(db, str(row[0]))
                    if existing is not None:
                        return existing, False
            await db.execute(
                f"INSERT INTO jobs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                (job.id, job.kind.value, job.to, job.message, job.code, job.language, job.agent, job.via,
                 job.idempotency_key, job.not_before, job.max_attempts, job.state.value, job.created,
                 job.updated, job.due, job.attempts_used, job.unavailable_since, int(job.cancel_requested),
                 job.reason),
            )
            await _note(db, job.id, job.created, JobState.QUEUED, "submitted", None)
        kept = await self.job(job.id)
        assert kept is not None
        return kept, True

    async def job(self, job_id: str) -> Job | None:
        try:
            return await self._read_job(self._db, job_id)
        except sqlite3.Error as exc:
            raise StoreError(f"the store could not read a job: {exc}") from None

    async def jobs(self, *, state: JobState | None, limit: int, before: str | None) -> list[Job]:
        where, args = [], []
        if state is not None:
            where.append("state = ?")
            args.append(state.value)
        if before is not None:
            where.append("id < ?")
            args.append(before)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        return await self._select(f"{_SELECT}{clause} ORDER BY id DESC LIMIT ?", (*args, limit))

    async def due_jobs(
        self, now: float, limit: int, *, via: str | None = None, not_via: Collection[str] = ()
    ) -> list[Job]:
        where = ["state = 'queued'", "due <= ?"]
        args: list[Any] = [now]
        if via is not None:
            where.append("via = ?")
            args.append(via)
        if not_via:
            where.append(f"via NOT IN ({', '.join('?' * len(not_via))})")
            args.extend(not_via)
        return await self._select(f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY due, id LIMIT ?",
                                  (*args, limit))

    async def in_flight_jobs(self) -> list[Job]:
        return await self._select(f"{_SELECT} WHERE state IN ('dialing', 'ringing', 'answered') ORDER BY id", ())

    async def transition(
        self, job_id: str, state: JobState, reason: str, *, only_from: Collection[JobState],
        attempt: int | None = None, fields: Mapping[str, Any] | None = None,
    ) -> Job | None:
        fields = dict(fields or {})
        if unknown := set(fields) - _SETTABLE:
            raise ValueError(f"not settable: {sorted(unknown)}")
        now = self._clock()
        sets = ["state = ?", "updated = ?", "reason = ?", *(f"{name} = ?" for name in fields)]
        if state.final:
            sets.append("code = NULL")
        froms = [s.value for s in only_from]
        async with self._writing("change a job's state") as db:
            cursor = await db.execute(
                f"UPDATE jobs SET {', '.join(sets)} WHERE id = ? AND state IN ({', '.join('?' * len(froms))})",
                (state.value, now, reason, *fields.values(), job_id, *froms),
            )
            if cursor.rowcount == 0:
                return None
            await _note(db, job_id, now, state, reason, attempt)
        return await self.job(job_id)

    async def start_attempt(self, attempt: Attempt, reason: str) -> Job | None:
        now = self._clock()
        async with self._writing("start an attempt") as db:
            cursor = await db.execute(
                "UPDATE jobs SET state = 'dialing', updated = ?, reason = ?, attempts_used = attempts_used + 1"
                " WHERE id = ? AND state = 'queued' AND cancel_requested = 0",
                (now, reason, attempt.job_id),
            )
            if cursor.rowcount == 0:
                return None
            await db.execute(
                "INSERT INTO job_attempts (job_id, number, platform, state, started, ended, reason, refs)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (attempt.job_id, attempt.number, attempt.platform, attempt.state.value, attempt.started,
                 attempt.ended, attempt.reason, json.dumps(attempt.refs)),
            )
            await _note(db, attempt.job_id, now, JobState.DIALING, reason, attempt.number)
        return await self.job(attempt.job_id)

    async def update_attempt(self, attempt: Attempt) -> None:
        async with self._writing("keep an attempt") as db:
            await db.execute(
                "UPDATE job_attempts SET state = ?, ended = ?, reason = ?, refs = ? WHERE job_id = ? AND number = ?",
                (attempt.state.value, attempt.ended, attempt.reason, json.dumps(attempt.refs), attempt.job_id,
                 attempt.number),
            )

    async def request_cancel(self, job_id: str) -> bool:
        async with self._writing("mark a job cancelled") as db:
            cursor = await db.execute(
                "UPDATE jobs SET cancel_requested = 1, updated = ? WHERE id = ?"
                " AND state IN ('dialing', 'ringing', 'answered') AND cancel_requested = 0",
                (self._clock(), job_id),
            )
            if cursor.rowcount:
                await db.execute(
                    "INSERT INTO job_history (job_id, at, state, reason, attempt)"
                    " SELECT id, ?, state, 'cancel requested: the call in progress goes on, no more attempts', NULL"
                    " FROM jobs WHERE id = ?",
                    (self._clock(), job_id),
                )
        return bool(cursor.rowcount)

    async def announce_records(self, attempt_id: str) -> list[CallRecord]:
        try:
            async with self._db.execute(
                "SELECT record FROM call_records WHERE attempt_id = ? ORDER BY id", (attempt_id,)
            ) as cursor:
                return [CallRecord.model_validate_json(row[0]) async for row in cursor]
        except sqlite3.Error as exc:
            raise StoreError(f"the store could not read call records: {exc}") from None

    async def announcement(self, job_id: str) -> Announcement | None:
        """What the `announce` route says for a job still going (a final job's code is gone)."""
        async with self._db.execute(
            f"SELECT id, message, code, language FROM jobs WHERE id = ? AND kind = 'notice'"
            f" AND state NOT IN ({', '.join('?' * len(_FINAL))})",
            (job_id, *_FINAL),
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return None
        return Announcement(job_id=row[0], message=row[1] or "", code=row[2], language=row[3])

    # -- the runner's lease ------------------------------------------------------------------

    async def claim_runner(self, owner: str, now: float, stale_after: float) -> bool:
        async with self._writing("hold the runner lease") as db:
            cursor = await db.execute(
                "INSERT INTO outbound_runner (name, owner, beat) VALUES ('outbound', ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, beat = excluded.beat"
                " WHERE outbound_runner.owner = excluded.owner OR outbound_runner.beat < ?",
                (owner, now, now - stale_after),
            )
        return bool(cursor.rowcount)

    async def release_runner(self, owner: str) -> None:
        async with self._writing("release the runner lease") as db:
            await db.execute("DELETE FROM outbound_runner WHERE name = 'outbound' AND owner = ?", (owner,))

    async def runner_alive(self, now: float, stale_after: float) -> bool:
        async with self._db.execute(
            "SELECT 1 FROM outbound_runner WHERE name = 'outbound' AND beat >= ?", (now - stale_after,)
        ) as cursor:
            return await cursor.fetchone() is not None

    # -- housekeeping ------------------------------------------------------------------------

    async def purge_jobs(self, before: float, keys_before: float) -> int:
        """Drop final jobs last changed before `before`, and spent idempotency keys; jobs dropped."""
        async with self._writing("purge old jobs") as db:
            finals = ", ".join("?" * len(_FINAL))
            old = f"SELECT id FROM jobs WHERE updated < ? AND state IN ({finals})"
            await db.execute(f"DELETE FROM job_history WHERE job_id IN ({old})", (before, *_FINAL))
            await db.execute(f"DELETE FROM job_attempts WHERE job_id IN ({old})", (before, *_FINAL))
            cursor = await db.execute(f"DELETE FROM jobs WHERE updated < ? AND state IN ({finals})", (before, *_FINAL))
            await db.execute("DELETE FROM idempotency_keys WHERE created < ?", (keys_before,))
        return int(cursor.rowcount or 0)

    # -- reading -----------------------------------------------------------------------------

    async def _select(self, sql: str, args: tuple[Any, ...]) -> list[Job]:
        try:
            async with self._db.execute(sql, args) as cursor:
                rows = list(await cursor.fetchall())
            return [await self._complete(self._db, row) for row in rows]
        except sqlite3.Error as exc:
            raise StoreError(f"the store could not read jobs: {exc}") from None

    async def _read_job(self, db: aiosqlite.Connection, job_id: str) -> Job | None:
        async with db.execute(f"{_SELECT} WHERE id = ?", (job_id,)) as cursor:
            row = await cursor.fetchone()
        return await self._complete(db, row) if row is not None else None

    async def _complete(self, db: aiosqlite.Connection, row: Any) -> Job:
        data = dict(zip(_COLUMNS, row, strict=True))
        data["to"] = data.pop("to_number")
        data["cancel_requested"] = bool(data["cancel_requested"])
        async with db.execute(
            "SELECT at, state, reason, attempt FROM (SELECT * FROM job_history WHERE job_id = ?"
            " ORDER BY id DESC LIMIT ?) ORDER BY id", (data["id"], MAX_HISTORY),
        ) as cursor:
            history = [HistoryEntry(at=at, state=state, reason=reason, attempt=attempt)
                       async for at, state, reason, attempt in _rows(cursor)]
        async with db.execute(
            "SELECT job_id, number, platform, state, started, ended, reason, refs FROM job_attempts"
            " WHERE job_id = ? ORDER BY number", (data["id"],),
        ) as cursor:
            attempts = [Attempt(job_id=r[0], number=r[1], platform=r[2], state=r[3], started=r[4], ended=r[5],
                                reason=r[6], refs=json.loads(r[7])) async for r in _rows(cursor)]
        return Job(**data, history=history, attempts=attempts)


async def _note(
    db: aiosqlite.Connection, job_id: str, at: float, state: JobState, reason: str, attempt: int | None
) -> None:
    await db.execute(
        "INSERT INTO job_history (job_id, at, state, reason, attempt) VALUES (?, ?, ?, ?, ?)",
        (job_id, at, state.value, reason, attempt),
    )


async def _rows(cursor: aiosqlite.Cursor) -> AsyncIterator[Any]:
    async for row in cursor:
        yield row
