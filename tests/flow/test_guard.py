"""The sign-in guard over a real SQLite store: what it lets through, what it locks, what survives."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivr.errors import SignInThrottledError, StoreError
from ivr.flow.guard import CALLER, KEY, WITHHELD, GuardLimits, SignInGuard, SignInLocked
from ivr.install_key import install_key
from ivr.store import SqliteStore


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


LIMITS = GuardLimits(key_failures=5, caller_failures=10, withheld_failures=8, global_failures=1000,
                     window=900, duration=900)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(tmp_path: Path, clock: Clock) -> AsyncIterator[SqliteStore]:
    store = await SqliteStore.open(tmp_path / "calls.db", clock)
    yield store
    await store.close()


async def guard_for(store: SqliteStore, tmp_path: Path, clock: Clock, limits: GuardLimits = LIMITS,
                    engaged: list[str] | None = None) -> SignInGuard:
    guard = SignInGuard(store, install_key(tmp_path), limits, clock=clock,
                        on_engaged=engaged.append if engaged is not None else None)
    await guard.open()
    return guard


async def wrong_guesses(guard: SignInGuard, key: str, caller: str, n: int) -> list[str | None]:
    """`n` wrong guesses one after the other; what each locked (kind), if anything."""
    locked = []
    for _ in range(n):
        reservation = await guard.reserve(guard.key_subject(key), guard.caller_subject(caller))
        subject = await guard.failed(reservation)
        locked.append(subject.kind if subject else None)
    return locked


async def test_five_wrong_guesses_lock_the_key_for_the_duration(store: SqliteStore, tmp_path: Path,
                                                                clock: Clock) -> None:
    guard = await guard_for(store, tmp_path, clock)
    assert await wrong_guesses(guard, "123456", "+15555550100", 5) == [None, None, None, None, KEY]
    with pytest.raises(SignInLocked) as locked:
        await guard.check(guard.key_subject("123456"))
    assert locked.value.subject.label == "****56"
    await guard.check(guard.key_subject("234567"))  # another key is free
    clock.now += 899
    with pytest.raises(SignInLocked):
        await guard.check(guard.key_subject("123456"))
    clock.now += 2
    await guard.check(guard.key_subject("123456"))


async def test_concurrent_guesses_on_one_key_reserve_before_they_are_sent(store: SqliteStore, tmp_path: Path,
                                                                          clock: Clock) -> None:
    """500 sign-ins at once: each counts before it is sent, so only five get to be sent."""
    guard = await guard_for(store, tmp_path, clock)
    key = guard.key_subject("123456")

    async def one(n: int) -> bool:
        try:
            reservation = await guard.reserve(key, guard.caller_subject(f"+1555{n:07d}"))
        except SignInLocked:
            return False
        await asyncio.sleep(0.01)  # the guess is on its way to KimVoice
        await guard.failed(reservation)
        return True

    sent = await asyncio.gather(*(one(n) for n in range(500)))
    assert sum(sent) == 5


async def test_right_pins_in_flight_give_their_place_back(store: SqliteStore, tmp_path: Path, clock: Clock) -> None:
    """Twenty sign-ins at once on one key, all with the right PIN: the ones past the allowance
    wait for the answers in flight instead of being locked out."""
    guard = await guard_for(store, tmp_path, clock)
    key = guard.key_subject("123456")

    async def one(n: int) -> None:
        reservation = await guard.reserve(key, guard.caller_subject(f"+1555{n:07d}"))
        await asyncio.sleep(0.01)
        await guard.signed_in(reservation)

    await asyncio.gather(*(one(n) for n in range(20)))
    await guard.check(key)
    assert guard.active_locks() == []


async def test_a_right_guess_does_not_count(store: SqliteStore, tmp_path: Path, clock: Clock) -> None:
    guard = await guard_for(store, tmp_path, clock)
    await wrong_guesses(guard, "123456", "+15555550100", 4)
    right = await guard.reserve(guard.key_subject("123456"), guard.caller_subject("+15555550100"))
    await guard.signed_in(right)
    assert await wrong_guesses(guard, "123456", "+15555550100", 1) == [KEY]  # the fifth wrong one


async def test_one_pin_on_many_keys_locks_the_calling_number(store: SqliteStore, tmp_path: Path,
                                                             clock: Clock) -> None:
    guard = await guard_for(store, tmp_path, clock)
    locked = [(await wrong_guesses(guard, f"{10000 + n}", "+15555550100", 1))[0] for n in range(10)]
    assert locked == [None] * 9 + [CALLER]
    with pytest.raises(SignInLocked):
        await guard.reserve(guard.key_subject("99999"), guard.caller_subject("+15555550100"))


@pytest.mark.parametrize("withheld", ["anonymous", "Anonymous", "UNKNOWN", "restricted", "", " anonymous "])
async def test_withheld_numbers_share_one_allowance(store: SqliteStore, tmp_path: Path, clock: Clock,
                                                    withheld: str) -> None:
    engaged: list[str] = []
    guard = await guard_for(store, tmp_path, clock, engaged=engaged)
    spray = ["anonymous", "unknown", "restricted", "", "Anonymous", "RESTRICTED", "unknown", withheld]
    locked = [(await wrong_guesses(guard, f"{20000 + n}", caller, 1))[0] for n, caller in enumerate(spray)]
    assert locked == [None] * 7 + [WITHHELD]
    assert engaged == [WITHHELD]
    with pytest.raises(SignInLocked):
        await guard.check(guard.caller_subject("anonymous"))
    await guard.check(guard.caller_subject("+15555550100"))  # a shown number is not held by it


async def test_counts_and_locks_survive_a_restart(store: SqliteStore, tmp_path: Path, clock: Clock) -> None:
    first = await guard_for(store, tmp_path, clock)
    await wrong_guesses(first, "123456", "+15555550100", 4)
    await wrong_guesses(first, "234567", "+15555550101", 5)
    second = await guard_for(store, tmp_path, clock)
    with pytest.raises(SignInLocked):
        await second.check(second.key_subject("234567"))
    assert await wrong_guesses(second, "123456", "+15555550102", 1) == [KEY]


async def test_key_numbers_are_kept_as_keyed_digests(store: SqliteStore, tmp_path: Path, clock: Clock) -> None:
    """A key number typed with the PIN behind it (no #) is a PIN in clear: the store never has it."""
    guard = await guard_for(store, tmp_path, clock)
    await wrong_guesses(guard, "1234562580", "+15555550100", 5)
    with sqlite3.connect(tmp_path / "calls.db") as db:
        dump = "\n".join(db.iterdump())
    assert "2580" not in dump and "1234562580" not in dump
    assert [lock.label for lock in await store.locks()] == ["********80"]


async def test_a_failure_that_cannot_be_stored_refuses_the_guess_and_still_counts(
    store: SqliteStore, tmp_path: Path, clock: Clock
) -> None:
    guard = await guard_for(store, tmp_path, clock)
    await wrong_guesses(guard, "123456", "+15555550100", 3)
    await store._db.execute("PRAGMA query_only = ON")  # every write fails from here on
    for _ in range(2):
        with pytest.raises(StoreError):
            await guard.reserve(guard.key_subject("123456"), guard.caller_subject("+15555550100"))
    assert not await store.healthy()
    with pytest.raises(SignInLocked):  # the two refused tries still count, in memory
        await guard.reserve(guard.key_subject("123456"), guard.caller_subject("+15555550100"))


class SlowToCount(SqliteStore):
    """The real store, slow to write every other guess (a disk under load)."""

    writes = 0

    async def add_failures(self, failures: list[tuple[str, str, float]]) -> list[int]:
        self.writes += 1
        if self.writes % 2:
            await asyncio.sleep(0.04)
        return await super().add_failures(failures)


async def test_paced_guesses_leave_a_pace_apart_when_the_store_is_slow_to_count_them(
    tmp_path: Path, clock: Clock
) -> None:
    store = await SlowToCount.open(tmp_path / "calls.db", clock)
    try:
        limits = GuardLimits(global_failures=2, pace=0.05, pace_wait=2, pace_queue=8, window=900, duration=900)
        guard = await guard_for(store, tmp_path, clock, limits)
        for n in range(2):
            await wrong_guesses(guard, f"{30000 + n}", f"+1555000{n:04d}", 1)
        assert guard.paced
        loop = asyncio.get_running_loop()
        sent_at: list[float] = []

        async def one(n: int) -> None:
            reservation = await guard.reserve(guard.key_subject(f"{40000 + n}"),
                                              guard.caller_subject(f"+1666{n:07d}"))
            sent_at.append(loop.time())
            await guard.failed(reservation)

        await asyncio.gather(*(one(n) for n in range(6)))
    finally:
        await store.close()
    gaps = [b - a for a, b in itertools.pairwise(sent_at)]
    assert len(sent_at) == 6 and all(gap >= 0.05 for gap in gaps), gaps


class StuckCounting(SqliteStore):
    """The real store; a guess's count never finishes once `stuck` is set (a hang-up comes first)."""

    stuck = False
    counting: asyncio.Event

    async def add_failures(self, failures: list[tuple[str, str, float]]) -> list[int]:
        if self.stuck:
            self.counting.set()
            await asyncio.Event().wait()
        return await super().add_failures(failures)


async def test_a_guess_given_up_while_it_is_counted_stays_counted(tmp_path: Path, clock: Clock) -> None:
    """The caller hangs up (the sign-in is cancelled) as their guess is being counted: it was
    never sent, and it counts all the same; the fifth such guess locks the key."""
    store = await StuckCounting.open(tmp_path / "calls.db", clock)
    try:
        guard = await guard_for(store, tmp_path, clock)
        await wrong_guesses(guard, "123456", "+15555550100", 4)
        store.stuck, store.counting = True, asyncio.Event()
        reserving = asyncio.ensure_future(guard.reserve(guard.key_subject("123456"),
                                                        guard.caller_subject("+15555550100")))
        await store.counting.wait()
        reserving.cancel()
        await asyncio.wait({reserving})
        assert reserving.cancelled()
        with pytest.raises(SignInLocked):
            await guard.check(guard.key_subject("123456"))
    finally:
        await store.close()


async def test_an_operator_clear_reaches_the_running_guard(store: SqliteStore, tmp_path: Path,
                                                           clock: Clock) -> None:
    guard = await guard_for(store, tmp_path, clock)
    await wrong_guesses(guard, "123456", "+15555550100", 5)
    lifted = await store.clear([(KEY, guard.key_subject("123456").digest)])
    assert [lock.label for lock in lifted] == ["****56"]
    await guard.check(guard.key_subject("123456"))
    assert guard.active_locks() == []


async def test_past_the_line_wide_bound_guesses_are_paced_and_bounded(store: SqliteStore, tmp_path: Path,
                                                                      clock: Clock) -> None:
    """Rotating numbers on rotating keys: past `global_failures` one guess per `pace` at most,
    `pace_queue` callers waiting at most; the others are refused (they reach an agent)."""
    engaged: list[str] = []
    limits = GuardLimits(global_failures=10, pace=0.05, pace_wait=0.5, pace_queue=4, window=900, duration=900)
    guard = await guard_for(store, tmp_path, clock, limits, engaged)
    for n in range(10):
        await wrong_guesses(guard, f"{30000 + n}", f"+1555000{n:04d}", 1)
    assert guard.paced and engaged == ["global"]

    loop = asyncio.get_running_loop()
    sent_at: list[float] = []

    async def one(n: int) -> str:
        try:
            reservation = await guard.reserve(guard.key_subject(f"{40000 + n}"), guard.caller_subject(f"+1666{n:07d}"))
        except SignInThrottledError:
            return "refused"
        sent_at.append(loop.time())
        await guard.failed(reservation)
        return "sent"

    outcomes = await asyncio.gather(*(one(n) for n in range(12)))
    assert outcomes.count("sent") <= 4 + 1 and outcomes.count("refused") >= 7
    gaps = [b - a for a, b in itertools.pairwise(sent_at)]
    assert all(gap >= 0.045 for gap in gaps), gaps
