"""Quota care: each NetCode asked of Codelocks once per lock and period, and no more calls in a
month than the budget allows.

Codelocks counts every NetCode request against the month's quota, even one it answered before,
and the same lock, start and duration always give the same NetCode. So a NetCode is kept (in a
`NetCodeStore`, SQLite in the service) until its period ends, and every caller of that lock in
that hour (or day) hears the kept one. A call that must go to Codelocks is first counted against
the month's budget, atomically in the store, so that two processes cannot both take the last one;
past the budget, nothing is sent. Callers of the same lock and period at the same moment share
one request.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from ivr.backends.codelocks._client import CodelocksClient
from ivr.backends.codelocks._locks import Lock
from ivr.backends.codelocks._models import NetCode
from ivr.backends.codelocks._periods import netcode_start
from ivr.errors import NetCodeNotAllowedError, NetCodeUnavailableError, QuotaExhaustedError, SettingsError
from ivr.logging import ThrottledWarning, get_logger

__all__ = ["WARN_AT", "MemoryNetCodeStore", "NetCodeStore", "NetCodes"]

log = get_logger("ivr.backends.codelocks")

WARN_AT = 0.8
"""The share of the monthly budget at which the log gets a warning (once a month per process)."""

_Key = tuple[str, str, int]


class NetCodeStore(Protocol):
    """Where NetCodes are kept until their period ends, and the month's calls are counted.

    The service backs it with SQLite; `MemoryNetCodeStore` is the one for tests. A store that
    cannot do its job raises `StoreError`: no NetCode is handed out on a guess.
    """

    async def find(self, lock_id: str, start: str, duration: int, now: datetime) -> NetCode | None:
        """The NetCode kept for (lock, start, duration) whose `valid_until` is after `now`."""

    async def keep(self, netcode: NetCode) -> None:
        """Keep `netcode` until its `valid_until` (one per lock, start and duration; those whose
        time has passed may be dropped)."""

    async def reserve(self, month: str, budget: int) -> int | None:
        """Count one call in `month` (`YYYY-MM`, UTC) and return the new count, or None, counting
        nothing, when `budget` calls were counted already. Atomic: of two processes asking for
        the last call of the budget, one gets it."""


class MemoryNetCodeStore:
    """`NetCodeStore` in memory, for tests and the sandbox demo: one process only."""

    def __init__(self) -> None:
        self.netcodes: dict[_Key, NetCode] = {}
        self.counts: dict[str, int] = {}

    async def find(self, lock_id: str, start: str, duration: int, now: datetime) -> NetCode | None:
        kept = self.netcodes.get((lock_id, start, duration))
        return kept if kept is not None and kept.valid_until > now else None

    async def keep(self, netcode: NetCode) -> None:
        self.netcodes[netcode.lock_id, netcode.start, netcode.duration] = netcode

    async def reserve(self, month: str, budget: int) -> int | None:
        count = self.counts.get(month, 0)
        if count >= budget:
            return None
        self.counts[month] = count + 1
        return count + 1


class NetCodes:
    """The NetCode of a lock for now: kept, or asked of Codelocks within the monthly budget.

    `clock` gives the time as an aware datetime (UTC by default): the start of the NetCode, the
    end of its period and the budget's month all follow from it.
    """

    def __init__(
        self, client: CodelocksClient, store: NetCodeStore, *, monthly_budget: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if monthly_budget < 1:
            raise SettingsError("IVR_CODELOCKS_MONTHLY_BUDGET must be at least 1")
        self._client = client
        self._store = store
        self._budget = monthly_budget
        self._warn_at = max(1, math.ceil(monthly_budget * WARN_AT))
        # The month last warned of. The count is shared through the store: another process (`ivr
        # netcode`, which logs errors only) may take the call at the threshold, so this one warns
        # at its first call at or past it.
        self._warned: str | None = None
        self._clock = clock
        self._flights: dict[_Key, asyncio.Task[NetCode]] = {}
        self._refused = ThrottledWarning(log, "codelocks.budget_exhausted", every=60.0)

    async def get(self, lock: Lock, member: int | None, *, timeout: float | None = None) -> NetCode:
        """The NetCode of `lock` for a key holder of `member`, with the lock's own duration.

        `NetCodeNotAllowedError` when the directory does not allow `member` on `lock`;
        `QuotaExhaustedError` past the budget (nothing sent) or when Codelocks says its quota is
        used up; the client's errors otherwise. `timeout` bounds the wait (then
        `NetCodeUnavailableError`); the request itself is bounded by the client's own timeout.
        """
        if not lock.allows(member):
            raise NetCodeNotAllowedError(f"member not allowed on lock {lock.number}")
        return await self.issue(lock, timeout=timeout)

    async def issue(self, lock: Lock, *, duration: int | None = None, timeout: float | None = None) -> NetCode:
        """The NetCode of `lock` for now, with `duration` (default: the lock's), with no member
        check: for agents (`ivr netcode`), not for callers."""
        duration = lock.duration if duration is None else duration
        now = self._clock()
        start, valid_until = netcode_start(now, lock.zone, duration)
        kept = await self._store.find(lock.id, start, duration, now)
        if kept is not None:
            return kept
        key = (lock.id, start, duration)
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.get_running_loop().create_task(self._fetch(lock, start, duration, valid_until))
            self._flights[key] = flight
            flight.add_done_callback(lambda done: self._landed(key, done))
        # shield: a caller who hangs up or stops waiting leaves the request to finish, and its
        # NetCode (a call of the month's budget, spent either way) kept for the next caller.
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(flight)
        except TimeoutError:
            raise NetCodeUnavailableError(f"no NetCode from Codelocks within {timeout:g} s") from None

    async def _fetch(self, lock: Lock, start: str, duration: int, valid_until: datetime) -> NetCode:
        month = self._clock().astimezone(UTC).strftime("%Y-%m")
        count = await self._store.reserve(month, self._budget)
        if count is None:
            self._refused.note(month=month, budget=self._budget)
            raise QuotaExhaustedError(f"the monthly budget of {self._budget} Codelocks NetCode calls is used up")
        if count >= self._warn_at and self._warned != month:
            self._warned = month
            log.warning("codelocks.budget_warning", month=month, used=count, budget=self._budget,
                        share=f"{round(100 * count / self._budget)}%")
        answer = await self._client.netcode(lock.id, model=lock.model, identifier=lock.identifier, start=start,
                                            duration=duration)
        netcode = NetCode(lock.id, start, duration, valid_until, answer.netcode)
        await self._store.keep(netcode)
        log.info("codelocks.netcode_issued", lock=lock.number, start=start, duration=duration, netcode=netcode.masked,
                 used=count, budget=self._budget)
        return netcode

    def _landed(self, key: _Key, flight: asyncio.Task[NetCode]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not flight.cancelled():
            flight.exception()  # retrieved: a flight whose callers all left must not warn "never retrieved"
