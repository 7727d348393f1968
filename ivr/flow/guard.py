"""The sign-in guard: how many PIN guesses reach KimVoice, whatever callers do.

A four-digit PIN falls to 10,000 guesses, so every guess is counted — reserved — before it is
sent, in memory and in the store, and the check and the reservation happen with no pause
between them, so concurrent calls cannot all pass one check. A guess that signs in is
forgotten again; any other outcome (wrong PIN, unknown key, no answer, hang-up) stays counted.
Four bounds, each over a sliding window (`IVR_LOCKOUT_WINDOW`):

- a key number: `key_failures` guesses, then it is locked for `duration`;
- a calling number: `caller_failures`, then it is locked (one PIN tried on many keys);
- withheld numbers (`anonymous`, `unknown`, `restricted`, empty) share one allowance,
  `withheld_failures`: a withheld caller cannot get a fresh one by calling again;
- the whole line: past `global_failures` guesses in the window (a spray from rotating numbers),
  sign-ins are paced — one guess every `pace` seconds for the whole line, at most `pace_queue`
  callers waiting, none longer than `pace_wait` — until the rate falls again. A caller who
  finds no turn hears `system-unavailable` and reaches an agent, never a lock.

When the store cannot record a guess the sign-in is refused (`StoreError`): the guard fails
closed. The counts live in memory too, so a disk error never resets them. Keys are kept as
keyed digests: a key number typed with its PIN behind it (no `#`) must not sit in clear.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

from ivr.errors import SignInThrottledError, StoreError
from ivr.install_key import keyed_digest
from ivr.logging import get_logger, mask_code

log = get_logger("ivr.guard")

WITHHELD_CALLERS = frozenset({"", "unknown", "anonymous", "restricted"})

KEY, CALLER, WITHHELD = "key", "caller", "withheld"
"""The kinds of subject a lock can hold."""


def is_withheld(caller_id: str) -> bool:
    return caller_id.strip().lower() in WITHHELD_CALLERS


@dataclass(frozen=True)
class GuardLimits:
    key_failures: int = 5
    caller_failures: int = 10
    withheld_failures: int = 20
    global_failures: int = 100
    window: float = 900.0
    duration: float = 900.0
    pace: float = 2.0
    pace_wait: float = 20.0
    pace_queue: int = 20

    def threshold(self, kind: str) -> int:
        return {KEY: self.key_failures, CALLER: self.caller_failures, WITHHELD: self.withheld_failures}[kind]


@dataclass(frozen=True)
class Subject:
    """What a count or a lock is about. `digest` names it in memory and in the store;
    `label` is what an operator sees (a key masked, a calling number in full)."""

    kind: str
    digest: str
    label: str


def key_subject(install_key: bytes, key_number: str) -> Subject:
    """The key number by its value: every spelling of one key (`0123456`, `123456`) shares one
    count, or leading zeros would each buy a fresh allowance."""
    number = str(int(key_number))
    return Subject(KEY, keyed_digest(install_key, f"key:{number}"), mask_code(number))


def caller_subject(install_key: bytes, caller_id: str) -> Subject:
    if is_withheld(caller_id):
        return Subject(WITHHELD, WITHHELD, "withheld numbers")
    return Subject(CALLER, keyed_digest(install_key, f"caller:{caller_id}"), caller_id)


@dataclass(frozen=True)
class Lock:
    kind: str
    label: str
    until: float


@dataclass(frozen=True)
class StoredFailure:
    row: int
    kind: str
    digest: str
    at: float


class LockoutStore(Protocol):
    """Where the guard keeps its counts so that they survive a restart. Raises `StoreError`."""

    async def add_failures(self, failures: list[tuple[str, str, float]]) -> list[int]:
        """Record failures (kind, digest, at) in one transaction; their row ids."""
        ...

    async def remove_failures(self, rows: list[int]) -> None: ...

    async def lock(self, kind: str, digest: str, label: str, until: float) -> None:
        """Lock a subject and forget its failures."""
        ...

    async def load_lockouts(self, since: float) -> tuple[list[StoredFailure], list[tuple[str, str, Lock]]]:
        """Failures after `since`, and the locks in force (kind, digest, lock)."""
        ...

    async def clears_after(self, row: int) -> list[tuple[int, str, str]]:
        """Locks an operator lifted (row, kind, digest) since `row`."""
        ...


class SignInLocked(Exception):
    """A subject of this sign-in is locked. Control flow: the caller hears `key-locked`."""

    def __init__(self, subject: Subject) -> None:
        super().__init__(subject.kind)
        self.subject = subject


@dataclass
class Reservation:
    """One guess, counted before it is sent."""

    subjects: tuple[Subject, ...]
    at: float
    rows: list[int] = field(default_factory=list)
    settled: bool = False


@dataclass
class _Count:
    times: deque[float] = field(default_factory=deque)  # guesses of the window, in flight included
    pending: int = 0  # guesses sent and not answered yet
    until: float = 0.0
    label: str = ""


class SignInGuard:
    """The counts of one service process; `open` loads what the store remembers."""

    def __init__(
        self, store: LockoutStore, install_key: bytes, limits: GuardLimits, *,
        clock: Callable[[], float] = time.time, on_engaged: Callable[[str], None] | None = None,
    ) -> None:
        self._store = store
        self._key = install_key
        self.limits = limits
        self._clock = clock
        self.on_engaged = on_engaged or (lambda bound: None)
        self._counts: dict[tuple[str, str], _Count] = {}
        self._all: deque[float] = deque()  # every guess of the window, for the line-wide bound
        self._paced = False
        self._waiting = 0
        self._turns = asyncio.Lock()
        self._next_turn = 0.0
        self._clears_seen = 0
        self._next_sweep = 0.0
        self._settled = asyncio.Event()  # set (and replaced) whenever a guess in flight is answered

    async def open(self) -> None:
        now = self._clock()
        failures, locks = await self._store.load_lockouts(now - self.limits.window)
        for failure in failures:
            self._count(failure.kind, failure.digest).times.append(failure.at)
            self._all.append(failure.at)
        for kind, digest, lock in locks:
            count = self._count(kind, digest)
            count.until, count.label = lock.until, lock.label
        self._all = deque(sorted(self._all))
        for count in self._counts.values():
            count.times = deque(sorted(count.times))
        self._clears_seen = max((row for row, _, _ in await self._store.clears_after(0)), default=0)

    # -- subjects -------------------------------------------------------------------------

    def key_subject(self, key_number: str) -> Subject:
        return key_subject(self._key, key_number)

    def caller_subject(self, caller_id: str) -> Subject:
        return caller_subject(self._key, caller_id)

    # -- the sign-in ----------------------------------------------------------------------

    async def check(self, *subjects: Subject) -> None:
        """Raise `SignInLocked` when one of `subjects` may not try now (before asking the PIN)."""
        locked = self._locked(subjects)
        if locked is not None and not await self._apply_clears():
            raise SignInLocked(locked)
        if locked is not None:
            await self.check(*subjects)

    async def reserve(self, *subjects: Subject) -> Reservation:
        """Count one guess against every subject, or raise `SignInLocked` / `SignInThrottledError`
        / `StoreError`. Call it right before the guess is sent.

        When the guesses in flight would use up a subject's allowance, wait (at most `pace_wait`)
        for their answers: right PINs give their place back, wrong ones lock. Cancelled while it
        waits (the caller hung up), it leaves no trace: no guess counted, no paced turn used.
        """
        await self.check(*subjects)
        deadline = asyncio.get_running_loop().time() + self.limits.pace_wait
        while True:
            while not self._room(subjects):
                try:
                    async with asyncio.timeout_at(deadline):
                        await self._settled.wait()
                except TimeoutError:
                    raise SignInThrottledError("the guesses in flight on this key did not settle in time") from None
            async with self._turn():
                if self._room(subjects):  # a turn may have taken a while: look again, then count at once
                    return await self._count_guess(subjects)

    def _room(self, subjects: tuple[Subject, ...]) -> bool:
        """Whether one more guess fits every subject's allowance now; `SignInLocked` if one is locked."""
        locked = self._locked(subjects)
        if locked is not None:
            raise SignInLocked(locked)
        return not self._full(subjects)

    async def _count_guess(self, subjects: tuple[Subject, ...]) -> Reservation:
        now = self._clock()
        reservation = Reservation(subjects, now)
        for subject in subjects:
            count = self._count(subject.kind, subject.digest)
            count.times.append(now)
            count.pending += 1
            count.label = subject.label
        self._all.append(now)
        self._engage_pacing(now)
        try:
            reservation.rows = await self._store.add_failures([(s.kind, s.digest, now) for s in subjects])
        except StoreError:
            log.error("guard.store_failed", action="count a guess")
            await self.failed(reservation)  # not sent, yet counted: the guard fails closed
            raise
        except asyncio.CancelledError:
            self._settle(reservation)  # the caller hung up as it was counted: never sent, it stays counted
            raise
        return reservation

    async def signed_in(self, reservation: Reservation) -> None:
        """The guess was right: it no longer counts."""
        if not self._settle(reservation):
            return
        for subject in reservation.subjects:
            times = self._counts.get((subject.kind, subject.digest), _Count()).times
            if reservation.at in times:
                times.remove(reservation.at)
        if reservation.at in self._all:
            self._all.remove(reservation.at)
        try:
            await self._store.remove_failures(reservation.rows)
        except StoreError:
            log.warning("guard.store_failed", action="forget a right guess")

    async def failed(self, reservation: Reservation) -> Subject | None:
        """The guess was wrong, or got no answer (it stays counted); the subject it locked, if any."""
        if not self._settle(reservation):
            return None
        now = self._clock()
        locked: Subject | None = None
        for subject in reservation.subjects:
            count = self._count(subject.kind, subject.digest)
            self._expire(count.times, now)
            if len(count.times) < self.limits.threshold(subject.kind):
                continue
            count.times.clear()
            count.until = now + self.limits.duration
            locked = locked or subject
            log.warning("guard.locked", kind=subject.kind, subject=subject.label, until=round(count.until))
            self.on_engaged(subject.kind)
            try:
                await self._store.lock(subject.kind, subject.digest, subject.label, count.until)
            except StoreError:
                log.error("guard.store_failed", action="keep a lock")  # memory still holds it
        return locked

    @property
    def paced(self) -> bool:
        """Whether sign-ins are paced now (too many wrong guesses on the whole line)."""
        self._engage_pacing(self._clock())
        return self._paced

    @property
    def waiting(self) -> int:
        """How many sign-ins wait for a paced turn now."""
        return self._waiting

    # -- operators ------------------------------------------------------------------------

    def active_locks(self) -> list[Lock]:
        now = self._clock()
        return [Lock(kind, c.label, c.until) for (kind, _), c in self._counts.items() if c.until > now]

    # -- inside ---------------------------------------------------------------------------

    def _count(self, kind: str, digest: str) -> _Count:
        count = self._counts.get((kind, digest))
        if count is None:
            count = self._counts[(kind, digest)] = _Count()
        return count

    def _locked(self, subjects: tuple[Subject, ...]) -> Subject | None:
        """The first subject locked, or out of allowance with its answered guesses alone."""
        now = self._clock()
        self._forget_old(now)
        for subject in subjects:
            count = self._counts.get((subject.kind, subject.digest))
            if count is None:
                continue
            self._expire(count.times, now)
            answered = len(count.times) - count.pending
            if count.until > now or answered >= self.limits.threshold(subject.kind):
                return subject
        return None

    def _full(self, subjects: tuple[Subject, ...]) -> bool:
        """Whether the guesses in flight use up what is left of a subject's allowance."""
        for subject in subjects:
            count = self._counts.get((subject.kind, subject.digest))
            if count is not None and len(count.times) >= self.limits.threshold(subject.kind):
                return True
        return False

    def _settle(self, reservation: Reservation) -> bool:
        """Mark `reservation` answered (once) and wake the sign-ins waiting on guesses in flight."""
        if reservation.settled:
            return False
        reservation.settled = True
        for subject in reservation.subjects:
            count = self._counts.get((subject.kind, subject.digest))
            if count is not None and count.pending:
                count.pending -= 1
        self._settled.set()
        self._settled = asyncio.Event()
        return True

    async def _apply_clears(self) -> bool:
        """Take in the locks an operator lifted (`ivr lockouts clear`); whether there were any."""
        try:
            clears = await self._store.clears_after(self._clears_seen)
        except StoreError:
            return False
        for row, kind, digest in clears:
            self._counts.pop((kind, digest), None)
            self._clears_seen = max(self._clears_seen, row)
        return bool(clears)

    @asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        """While the line is paced, this guess's turn, or refuse. The turn is held until the guess
        is counted and the next one starts `pace` after that, so guesses leave `pace` apart even
        when the store is slow to count one."""
        if not self.paced:
            yield
            return
        if self._waiting >= self.limits.pace_queue:
            raise SignInThrottledError("too many sign-ins are waiting for a turn")
        loop = asyncio.get_running_loop()
        self._waiting += 1
        try:
            async with asyncio.timeout(self.limits.pace_wait):
                await self._turns.acquire()
                try:
                    await asyncio.sleep(max(0.0, self._next_turn - loop.time()))
                except BaseException:
                    self._turns.release()
                    raise
        except TimeoutError:
            raise SignInThrottledError(f"no sign-in turn within {self.limits.pace_wait:g} s") from None
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._next_turn = loop.time() + self.limits.pace
            self._turns.release()

    def _engage_pacing(self, now: float) -> None:
        self._expire(self._all, now)
        paced = len(self._all) >= self.limits.global_failures
        if paced and not self._paced:
            log.warning("guard.pacing_on", guesses=len(self._all), window_s=self.limits.window,
                        pace_s=self.limits.pace)
            self.on_engaged("global")
        elif self._paced and not paced:
            log.warning("guard.pacing_off", guesses=len(self._all))
        self._paced = paced

    def _expire(self, times: deque[float], now: float) -> None:
        while times and times[0] <= now - self.limits.window:
            times.popleft()

    def _forget_old(self, now: float) -> None:
        """Drop subjects with nothing left to remember, so memory stays bounded by the window."""
        if len(self._counts) < 1024 or now < self._next_sweep:
            return
        self._next_sweep = now + 60
        for subject, count in list(self._counts.items()):
            self._expire(count.times, now)
            if not count.times and not count.pending and count.until <= now:
                del self._counts[subject]
