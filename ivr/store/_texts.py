"""Text messages in the embedded store: Kimoby's webhook events handled, its customers who
unsubscribed, and the delivery status of each text a call sent.

A webhook may come before the call that sent the text has ended (its record is written at the
end), so a status is kept by message id apart from the record and read into it (`TextMessage`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime

import aiosqlite

from ivr.backends.kimoby import Customer, DeliveryUpdate, SubscriptionChange
from ivr.errors import StoreError
from ivr.records import CallRecord

TEXTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS text_events (event_id TEXT PRIMARY KEY, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS text_events_at ON text_events (at);
CREATE TABLE IF NOT EXISTS text_unsubscribed (customer TEXT PRIMARY KEY, reference TEXT, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS text_status (
    message_id TEXT PRIMARY KEY, status TEXT NOT NULL, error TEXT, updated REAL NOT NULL, final INTEGER NOT NULL
);
"""


class TextTables:
    """The text-message methods of `SqliteStore`: it provides `_db`, `_clock` and `_writing`.

    `handled`/`remember` are Kimoby's `SeenEvents`; `is_unsubscribed` is the check the client
    makes before every text; `on_text_event` is what the webhook receiver hands events to.
    """

    _db: aiosqlite.Connection
    _clock: Callable[[], float]
    _writing: Callable[[str], AbstractAsyncContextManager[aiosqlite.Connection]]

    async def handled(self, event_id: str) -> bool:
        try:
            async with self._db.execute("SELECT 1 FROM text_events WHERE event_id = ?", (event_id,)) as cursor:
                return await cursor.fetchone() is not None
        except sqlite3.Error as exc:
            raise StoreError(f"the store could not read the webhook events: {exc}") from None

    async def remember(self, event_id: str) -> None:
        async with self._writing("remember a webhook event") as db:
            await db.execute("INSERT OR IGNORE INTO text_events (event_id, at) VALUES (?, ?)",
                             (event_id, self._clock()))

    async def is_unsubscribed(self, customer: Customer) -> bool:
        try:
            async with self._db.execute(
                "SELECT 1 FROM text_unsubscribed WHERE customer = ? OR (reference IS NOT NULL AND reference = ?)",
                (customer.id, customer.reference),
            ) as cursor:
                return await cursor.fetchone() is not None
        except sqlite3.Error as exc:
            raise StoreError(f"the store could not read the unsubscribed customers: {exc}") from None

    async def on_text_event(self, event: DeliveryUpdate | SubscriptionChange) -> None:
        if isinstance(event, SubscriptionChange):
            await self._subscription(event)
        else:
            await self._delivery(event)

    async def _subscription(self, event: SubscriptionChange) -> None:
        async with self._writing("keep an unsubscribe") as db:
            if event.unsubscribed:
                await db.execute(
                    "INSERT OR REPLACE INTO text_unsubscribed (customer, reference, at) VALUES (?, ?, ?)",
                    (event.customer_id, event.reference, self._clock()),
                )
            else:
                await db.execute("DELETE FROM text_unsubscribed WHERE customer = ?", (event.customer_id,))

    async def _delivery(self, event: DeliveryUpdate) -> None:
        """Keep the newest status of a message; a final one (delivered, undelivered, failed...)
        is never replaced by a late, older event."""
        updated = _epoch(event.updated_at) or self._clock()
        final = int(event.status.final)
        async with self._writing("keep a delivery status") as db:
            await db.execute(
                "INSERT INTO text_status (message_id, status, error, updated, final) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (message_id) DO UPDATE SET status = excluded.status, error = excluded.error,"
                " updated = excluded.updated, final = excluded.final"
                " WHERE text_status.final = 0 AND (excluded.final = 1 OR excluded.updated >= text_status.updated)",
                (event.message_id, event.status.value, (event.error or "")[:200] or None, updated, final),
            )

    async def _with_text_status(self, records: list[CallRecord]) -> list[CallRecord]:
        """`records` with the delivery status Kimoby has told of each text they sent."""
        ids = [text.id for record in records for text in record.texts]
        if not ids:
            return records
        statuses: dict[str, tuple[str, str | None]] = {}
        try:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                marks = ", ".join("?" * len(chunk))
                async with self._db.execute(
                    f"SELECT message_id, status, error FROM text_status WHERE message_id IN ({marks})", chunk,
                ) as cursor:
                    statuses.update({str(r[0]): (str(r[1]), r[2]) async for r in cursor})
        except sqlite3.Error as exc:
            raise StoreError(f"the store could not read the delivery statuses: {exc}") from None
        for record in records:
            for text in record.texts:
                if text.id in statuses:
                    text.status, text.error = statuses[text.id]
        return records

    async def _purge_texts(self, db: aiosqlite.Connection, before: float) -> None:
        """Webhook events a week old (Kimoby retries for about ten hours), and statuses as old as
        the records."""
        await db.execute("DELETE FROM text_events WHERE at < ?", (self._clock() - 7 * 86400,))
        await db.execute("DELETE FROM text_status WHERE updated < ?", (before,))


def _epoch(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None
