"""The embedded store on a real SQLite file: lockouts and records survive a reopen."""

from __future__ import annotations

import time
from pathlib import Path

from ivr.flow.records import BackendCall, CallRecord, Outcome, Step
from ivr.store import SqliteStore


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


LIMITS = {"threshold": 5, "window": 900.0, "duration": 900.0}


async def test_five_failures_within_the_window_lock_for_fifteen_minutes(tmp_path: Path) -> None:
    clock = Clock()
    store = await SqliteStore.open(tmp_path / "calls.db", clock)
    try:
        results = [await store.add_failure("key", "123456", **LIMITS) for _ in range(5)]
        assert results == [False, False, False, False, True]
        assert await store.is_locked("key", "123456")
        assert not await store.is_locked("key", "234567")
        assert not await store.is_locked("caller", "123456")
        clock.now += 899
        assert await store.is_locked("key", "123456")
        clock.now += 2
        assert not await store.is_locked("key", "123456")
    finally:
        await store.close()


async def test_failures_outside_the_window_do_not_count(tmp_path: Path) -> None:
    clock = Clock()
    store = await SqliteStore.open(tmp_path / "calls.db", clock)
    try:
        for _ in range(4):
            await store.add_failure("key", "123456", **LIMITS)
        clock.now += 901
        assert not await store.add_failure("key", "123456", **LIMITS)
        assert not await store.is_locked("key", "123456")
    finally:
        await store.close()


async def test_locks_and_counts_survive_a_restart(tmp_path: Path) -> None:
    clock = Clock()
    first = await SqliteStore.open(tmp_path / "calls.db", clock)
    for _ in range(4):
        await first.add_failure("key", "123456", **LIMITS)
    await first.close()
    second = await SqliteStore.open(tmp_path / "calls.db", clock)
    try:
        assert await second.add_failure("key", "123456", **LIMITS)
        assert await second.is_locked("key", "123456")
    finally:
        await second.close()


async def test_records_round_trip_newest_first(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "calls.db")
    try:
        for n in range(3):
            record = CallRecord(call_id=f"c{n}", route="keybox", caller_id="+15555550100", started=1000.0 + n,
                                ended=1010.0 + n, outcome=Outcome.UPDATE_CODE_READ, codes=["*****83"],
                                steps=[Step(name="welcome", at=0.1, ms=900)],
                                backend=[BackendCall(method="HealthCheck", at=0.05, ms=3.2, result="ok")])
            await store.save(record)
        recent = await store.recent(2)
        assert [r.call_id for r in recent] == ["c2", "c1"]
        again = await store.get("c0")
        assert again is not None and again.steps[0].name == "welcome" and again.codes == ["*****83"]
        assert await store.get("nope") is None
    finally:
        await store.close()
