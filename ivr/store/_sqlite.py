"""The embedded store: call records, lockout counts and outbound jobs in one SQLite file.

It survives a restart of the service. Every failure to read or write is a `StoreError`, so a
full disk or a damaged file reaches the caller as `system-unavailable` where it matters (a
PIN guess that cannot be counted is not sent) and is logged where it does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from ivr.errors import StoreError
from ivr.flow.guard import Lock, StoredFailure
from ivr.records import CallRecord
from ivr.store._jobs import JOBS_SCHEMA, JobTables
from ivr.store._netcodes import NETCODES_SCHEMA, NetCodeTables
from ivr.store._texts import TEXTS_SCHEMA, TextTables

_VERSION = 4
"""`PRAGMA user_version` of the schema below, which `_migrate` brings older files up to.
0: the first schema (a call record per call id, lockouts by key number in clear); 2: before
outbound jobs (records without `attempt_id`, a producer-less `announcements` table); 3: before
text messages and NetCodes (their tables are new: nothing to carry over)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS call_records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id TEXT NOT NULL,
    route TEXT NOT NULL,
    caller_id TEXT NOT NULL,
    started REAL NOT NULL,
    ended REAL,
    outcome TEXT,
    record TEXT NOT NULL,
    attempt_id TEXT
);
CREATE INDEX IF NOT EXISTS call_records_started ON call_records (started);
CREATE INDEX IF NOT EXISTS call_records_call_id ON call_records (call_id);
CREATE TABLE IF NOT EXISTS guesses (
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, digest TEXT NOT NULL, at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS guesses_at ON guesses (at);
CREATE INDEX IF NOT EXISTS guesses_subject ON guesses (kind, digest);
CREATE TABLE IF NOT EXISTS subject_locks (
    kind TEXT NOT NULL, digest TEXT NOT NULL, label TEXT NOT NULL, until REAL NOT NULL,
    PRIMARY KEY (kind, digest)
);
CREATE TABLE IF NOT EXISTS lock_clears (
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, digest TEXT NOT NULL, at REAL NOT NULL
);
"""


class SqliteStore(JobTables, TextTables, NetCodeTables):
    """Call records, lockouts, outbound jobs, text-message statuses and NetCodes over one SQLite
    database (WAL: readers never wait on the writer)."""

    def __init__(self, db: aiosqlite.Connection, path: Path, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._path = path
        self._inode = _inode(path)
        self._clock = clock
        self._write_failed = False
        self._write_lock = asyncio.Lock()  # one transaction at a time on the one connection

    @classmethod
    async def open(cls, path: Path, clock: Callable[[], float] = time.time) -> SqliteStore:
        """Open (or make) the database, check it (`quick_check`) and bring its schema up to date.

        Raises `StoreError` with one line when the file cannot be opened or is damaged.
        """
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = await aiosqlite.connect(path)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the database {path}: {exc}") from None
        try:
            async with db.execute("PRAGMA quick_check") as cursor:
                verdict = [row[0] for row in await cursor.fetchall()]
            if verdict != ["ok"]:
                raise StoreError(f"the database {path} is damaged: {'; '.join(map(str, verdict[:3]))}")
            await db.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
            await _migrate(db)
        except sqlite3.Error as exc:
            await db.close()
            raise StoreError(f"the database {path} cannot be used: {exc}") from None
        except StoreError:
            await db.close()
            raise
        return cls(db, path, clock)

    async def close(self) -> None:
        await self._db.close()

    async def healthy(self) -> bool:
        """Whether the store can do its job: the file is still the one opened, it answers, and
        the last write went through."""
        if self._write_failed or _inode(self._path) != self._inode:
            return False
        try:
            async with self._db.execute("SELECT COUNT(*) FROM subject_locks") as cursor:
                await cursor.fetchone()
        except sqlite3.Error:
            return False
        return True

    @asynccontextmanager
    async def _writing(self, what: str) -> AsyncIterator[aiosqlite.Connection]:
        """One transaction; any failure rolls it back and becomes a `StoreError`."""
        async with self._write_lock:
            try:
                yield self._db
                await self._db.commit()
            except (OSError, sqlite3.Error) as exc:
                self._write_failed = True
                try:
                    await self._db.rollback()
                except sqlite3.Error:
                    pass
                raise StoreError(f"the store could not {what}: {exc}") from None
            except BaseException:
                # Cancelled mid-transaction (a stop): undo it, or the next write would commit half of it.
                with contextlib.suppress(sqlite3.Error):
                    await asyncio.shield(self._db.rollback())
                raise
            self._write_failed = False

    # -- lockouts (`ivr.flow.guard.LockoutStore`) -------------------------------------------

    async def add_failures(self, failures: list[tuple[str, str, float]]) -> list[int]:
        rows = []
        async with self._writing("count a guess") as db:
            for kind, digest, at in failures:
                cursor = await db.execute("INSERT INTO guesses (kind, digest, at) VALUES (?, ?, ?)", (kind, digest, at))
                rows.append(int(cursor.lastrowid or 0))
        return rows

    async def remove_failures(self, rows: list[int]) -> None:
        async with self._writing("forget a guess") as db:
            await db.executemany("DELETE FROM guesses WHERE id = ?", [(row,) for row in rows])

    async def lock(self, kind: str, digest: str, label: str, until: float) -> None:
        async with self._writing("keep a lock") as db:
            await db.execute(
                "INSERT OR REPLACE INTO subject_locks (kind, digest, label, until) VALUES (?, ?, ?, ?)",
                (kind, digest, label, until),
            )
            await db.execute("DELETE FROM guesses WHERE kind = ? AND digest = ?", (kind, digest))

    async def load_lockouts(self, since: float) -> tuple[list[StoredFailure], list[tuple[str, str, Lock]]]:
        now = self._clock()
        try:
            async with self._db.execute("SELECT id, kind, digest, at FROM guesses WHERE at > ?", (since,)) as cursor:
                failures = [StoredFailure(*row) async for row in cursor]
            async with self._db.execute(
                "SELECT kind, digest, label, until FROM subject_locks WHERE until > ?", (now,)
            ) as cursor:
                locks = [(kind, digest, Lock(kind, label, until)) async for kind, digest, label, until in cursor]
        except sqlite3.Error as exc:
            raise StoreError(f"the store could not read the lockouts: {exc}") from None
        return failures, locks

    async def clears_after(self, row: int) -> list[tuple[int, str, str]]:
        try:
            async with self._db.execute(
                "SELECT id, kind, digest FROM lock_clears WHERE id > ? ORDER BY id", (row,)
            ) as cursor:
                return [(int(r[0]), str(r[1]), str(r[2])) async for r in cursor]
        except sqlite3.Error as exc:
            raise StoreError(f"the store could not read the lifted locks: {exc}") from None

    async def locks(self) -> list[Lock]:
        """The locks in force, soonest to end first (what `ivr lockouts` lists)."""
        async with self._db.execute(
            "SELECT kind, label, until FROM subject_locks WHERE until > ? ORDER BY until", (self._clock(),)
        ) as cursor:
            return [Lock(*row) async for row in cursor]

    async def clear(self, subjects: list[tuple[str, str]]) -> list[Lock]:
        """Lift the locks and forget the counts of `subjects` (kind, digest); the locks lifted.

        A running service learns of it through `lock_clears` the next time the subject tries.
        """
        lifted: list[Lock] = []
        now = self._clock()
        async with self._writing("lift a lock") as db:
            for kind, digest in subjects:
                async with db.execute(
                    "SELECT label, until FROM subject_locks WHERE kind = ? AND digest = ? AND until > ?",
                    (kind, digest, now),
                ) as cursor:
                    lifted += [Lock(kind, label, until) async for label, until in cursor]
                await db.execute("DELETE FROM subject_locks WHERE kind = ? AND digest = ?", (kind, digest))
                await db.execute("DELETE FROM guesses WHERE kind = ? AND digest = ?", (kind, digest))
                await db.execute("INSERT INTO lock_clears (kind, digest, at) VALUES (?, ?, ?)", (kind, digest, now))
        return lifted

    # -- call records -----------------------------------------------------------------------

    async def save(self, record: CallRecord) -> None:
        """Keep `record` beside any other with the same call id: the id comes from the peer."""
        async with self._writing("keep a call record") as db:
            await db.execute(
                "INSERT INTO call_records (call_id, route, caller_id, started, ended, outcome, record, attempt_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (record.call_id, record.route, record.caller_id, record.started, record.ended,
                 record.outcome.value if record.outcome else None, record.model_dump_json(), record.attempt_id),
            )

    async def recent(self, limit: int = 20) -> list[CallRecord]:
        async with self._db.execute(
            "SELECT record FROM call_records ORDER BY started DESC, id DESC LIMIT ?", (limit,)
        ) as cursor:
            records = [CallRecord.model_validate_json(row[0]) async for row in cursor]
        return await self._with_text_status(records)

    async def get(self, call_id: str) -> CallRecord | None:
        """The newest record of `call_id` (see `all_of` for every one)."""
        records = await self.all_of(call_id)
        return records[0] if records else None

    async def all_of(self, call_id: str) -> list[CallRecord]:
        """Every record kept under `call_id`, newest first."""
        async with self._db.execute(
            "SELECT record FROM call_records WHERE call_id = ? ORDER BY id DESC", (call_id,)
        ) as cursor:
            records = [CallRecord.model_validate_json(row[0]) async for row in cursor]
        return await self._with_text_status(records)

    # -- housekeeping -----------------------------------------------------------------------

    async def purge(self, *, records_before: float, lockouts_before: float) -> int:
        """Drop call records started before `records_before`, and lockout rows that no longer
        count; the number of call records dropped."""
        async with self._writing("purge old rows") as db:
            cursor = await db.execute("DELETE FROM call_records WHERE started < ?", (records_before,))
            await db.execute("DELETE FROM guesses WHERE at < ?", (lockouts_before,))
            await db.execute("DELETE FROM subject_locks WHERE until < ?", (self._clock(),))
            await db.execute("DELETE FROM lock_clears WHERE at < ?", (lockouts_before,))
            await self._purge_texts(db, records_before)
            await self._purge_netcodes(db)
        return int(cursor.rowcount or 0)


async def _migrate(db: aiosqlite.Connection) -> None:
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    version = int(row[0]) if row else 0
    if version > _VERSION:
        raise StoreError(f"the database was written by a newer keybox-ivr (schema {version}, this one: {_VERSION})")
    await db.executescript(_SCHEMA + JOBS_SCHEMA + TEXTS_SCHEMA + NETCODES_SCHEMA)
    async with db.execute("PRAGMA table_info(call_records)") as cursor:
        columns = {row[1] async for row in cursor}
    if "attempt_id" not in columns:
        await db.execute("ALTER TABLE call_records ADD COLUMN attempt_id TEXT")
    await db.executescript(
        "CREATE INDEX IF NOT EXISTS call_records_attempt ON call_records (attempt_id);"
        "DROP TABLE IF EXISTS announcements;"  # nothing ever wrote it: jobs replace it
    )
    if version < _VERSION:
        async with db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'calls'") as cursor:
            first_schema = await cursor.fetchone() is not None
        if first_schema:
            # Records keep their content; the old lockout rows named keys in clear and last
            # fifteen minutes: they are dropped rather than carried over.
            await db.executescript(
                "INSERT INTO call_records (call_id, route, caller_id, started, ended, outcome, record)"
                " SELECT call_id, route, caller_id, started, ended, outcome, record FROM calls ORDER BY started;"
                "DROP TABLE calls; DROP TABLE IF EXISTS failures; DROP TABLE IF EXISTS locks;"
            )
        await db.execute(f"PRAGMA user_version = {_VERSION}")
    await db.commit()


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None
