"""The store's text-message and NetCode tables on a real SQLite file, two processes' worth of
connections where it matters: the monthly budget cannot be overspent, a late webhook cannot undo a
final delivery status, unsubscribes hold, kept NetCodes expire."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ivr.backends.codelocks import NetCode
from ivr.backends.kimoby import Customer, DeliveryUpdate, MessageStatus, SubscriptionChange
from ivr.records import CallRecord, TextMessage
from ivr.store import SqliteStore

T0 = datetime(2026, 12, 2, 15, 30, tzinfo=UTC)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(tmp_path / "calls.db", clock=T0.timestamp)
    yield opened
    await opened.close()


def delivery(status: str, minutes: int, message_id: str = "345634563") -> DeliveryUpdate:
    return DeliveryUpdate(f"e-{status}-{minutes}", message_id, MessageStatus(status), None,
                          T0 + timedelta(minutes=minutes))


async def test_two_processes_cannot_overspend_the_budget(tmp_path: Path) -> None:
    first = await SqliteStore.open(tmp_path / "calls.db")
    second = await SqliteStore.open(tmp_path / "calls.db")  # `ivr netcode` beside `ivr serve`
    try:
        counts = await asyncio.gather(*(s.reserve("2026-12", 5) for _ in range(6) for s in (first, second)))
        assert sorted(c for c in counts if c is not None) == [1, 2, 3, 4, 5]
        assert counts.count(None) == 7
        assert await first.netcode_calls("2026-12") == 5 and await second.reserve("2027-01", 5) == 1
    finally:
        await first.close()
        await second.close()


async def test_a_kept_netcode_is_found_until_its_period_ends(store: SqliteStore) -> None:
    netcode = NetCode("202011161623", "2026-12-02 15:00", 4, T0 + timedelta(minutes=30), "123456")
    await store.keep(netcode)
    found = await store.find("202011161623", "2026-12-02 15:00", 4, T0)
    assert found is not None and found.code == "123456" and found.valid_until == netcode.valid_until
    assert await store.find("202011161623", "2026-12-02 15:00", 4, T0 + timedelta(minutes=31)) is None
    assert await store.find("202011161623", "2026-12-02 16:00", 4, T0) is None


async def test_a_final_status_is_not_undone_by_a_late_older_event(store: SqliteStore) -> None:
    await store.save(CallRecord(call_id="c1", route="keybox", caller_id="+15555550100",
                                texts=[TextMessage(id="345634563")]))
    for event in (delivery("queued", 0), delivery("delivered", 2), delivery("sent", 1)):
        await store.on_text_event(event)
    record = await store.get("c1")
    assert record is not None and [(t.id, t.status) for t in record.texts] == [("345634563", "delivered")]


async def test_a_newer_status_replaces_an_older_one_and_failures_keep_their_error(store: SqliteStore) -> None:
    await store.save(CallRecord(call_id="c2", route="keybox", caller_id="x", texts=[TextMessage(id="9")]))
    await store.on_text_event(delivery("sent", 1, "9"))
    await store.on_text_event(DeliveryUpdate("e-f", "9", MessageStatus.FAILED, "Invalid destination number",
                                             T0 + timedelta(minutes=2)))
    (recent,) = await store.recent(1)
    assert (recent.texts[0].status, recent.texts[0].error) == ("failed", "Invalid destination number")


async def test_unsubscribes_hold_until_a_resubscribe(store: SqliteStore) -> None:
    customer = Customer(id="77", reference="123456")
    await store.on_text_event(SubscriptionChange("u1", "77", "123456", True, T0))
    assert await store.is_unsubscribed(customer)
    assert await store.is_unsubscribed(Customer(id="other", reference="123456"))  # by reference too
    await store.on_text_event(SubscriptionChange("u2", "77", "123456", False, T0))
    assert not await store.is_unsubscribed(customer)


async def test_handled_events_are_remembered_for_a_week(tmp_path: Path) -> None:
    now = [T0.timestamp()]
    store = await SqliteStore.open(tmp_path / "calls.db", clock=lambda: now[0])
    try:
        assert not await store.handled("e1")
        await store.remember("e1")
        assert await store.handled("e1")
        now[0] += 8 * 86400
        await store.purge(records_before=0, lockouts_before=0)
        assert not await store.handled("e1")
    finally:
        await store.close()
