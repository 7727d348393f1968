"""Lock NetCodes in the embedded store (`ivr.backends.codelocks.NetCodeStore`): each NetCode kept
until its period ends, and the Codelocks calls counted per month.

Kept in the database, not in memory, so that `ivr netcode` (another process) and the service
share both: a NetCode an agent asked for is the one the next caller hears, and the budget is one.
A NetCode is a code: it is dropped when its period ends (and at every purge), and never logged.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime

import aiosqlite

from ivr.backends.codelocks import NetCode
from ivr.errors import StoreError

NETCODES_SCHEMA = """
CREATE TABLE IF NOT EXISTS netcodes (
    lock_id TEXT NOT NULL, start TEXT NOT NULL, duration INTEGER NOT NULL, valid_until REAL NOT NULL,
    netcode TEXT NOT NULL, PRIMARY KEY (lock_id, start, duration)
);
CREATE TABLE IF NOT EXISTS netcode_budget (month TEXT PRIMARY KEY, calls INTEGER NOT NULL);
"""


class NetCodeTables:
    """The NetCode methods of `SqliteStore`: it provides `_db`, `_clock` and `_writing`."""

    _db: aiosqlite.Connection
    _clock: Callable[[], float]
    _writing: Callable[[str], AbstractAsyncContextManager[aiosqlite.Connection]]

    async def find(self, lock_id: str, start: str, duration: int, now: datetime) -> NetCode | None:
        try:
            async with self._db.execute(
                "SELECT valid_until, netcode FROM netcodes WHERE lock_id = ? AND start = ? AND duration = ?"
                " AND valid_until > ?", (lock_id, start, duration, now.timestamp()),
            ) as cursor:
                row = await cursor.fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"the store could not read the NetCodes: {exc}") from None
        if row is None:
            return None
        return NetCode(lock_id, start, duration, datetime.fromtimestamp(float(row[0]), UTC), str(row[1]))

    async def keep(self, netcode: NetCode) -> None:
        async with self._writing("keep a NetCode") as db:
            await db.execute("DELETE FROM netcodes WHERE valid_until <= ?", (self._clock(),))
            await db.execute(
                "INSERT OR REPLACE INTO netcodes (lock_id, start, duration, valid_until, netcode)"
                " VALUES (?, ?, ?, ?, ?)",
                (netcode.lock_id, netcode.start, netcode.duration, netcode.valid_until.timestamp(), netcode.code),
            )

    async def reserve(self, month: str, budget: int) -> int | None:
        async with self._writing("count a Codelocks call") as db:
            await db.execute("INSERT OR IGNORE INTO netcode_budget (month, calls) VALUES (?, 0)", (month,))
            cursor = await db.execute(
                "UPDATE netcode_budget SET calls = calls + 1 WHERE month = ? AND calls < ?", (month, budget))
            if cursor.rowcount == 0:
                return None
            async with db.execute("SELECT calls FROM netcode_budget WHERE month = ?", (month,)) as rows:
                row = await rows.fetchone()
        return int(row[0]) if row else None

    async def netcode_calls(self, month: str) -> int:
        """Codelocks calls counted in `month` (`YYYY-MM`), for `ivr netcode` and /metrics."""
        try:
            async with self._db.execute("SELECT calls FROM netcode_budget WHERE month = ?", (month,)) as cursor:
                row = await cursor.fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"the store could not read the NetCode budget: {exc}") from None
        return int(row[0]) if row else 0

    async def _purge_netcodes(self, db: aiosqlite.Connection) -> None:
        await db.execute("DELETE FROM netcodes WHERE valid_until <= ?", (self._clock(),))
