"""A Codelocks sandbox on loopback, a client for it, the sample lock directory, and `NetCodes`
over an in-memory store with a clock the test moves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from ivr.backends.codelocks import CodelocksClient, LockDirectory, MemoryNetCodeStore, NetCodes, load_locks
from ivr.backends.codelocks.sandbox import (
    SAMPLE_LOCKS_FILE,
    SANDBOX_API_KEY,
    CodelocksKnobs,
    CodelocksSandbox,
    CodelocksSandboxServer,
)


class WallClock:
    """An aware UTC time the test sets and moves."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> WallClock:
    return WallClock(datetime(2026, 6, 15, 13, 20, tzinfo=UTC))


@pytest.fixture
async def codelocks(clock: WallClock) -> AsyncIterator[CodelocksSandboxServer]:
    async with CodelocksSandboxServer(CodelocksSandbox(CodelocksKnobs(), clock=clock)) as server:
        yield server


@pytest.fixture
async def client(codelocks: CodelocksSandboxServer) -> AsyncIterator[CodelocksClient]:
    async with CodelocksClient(codelocks.url, SANDBOX_API_KEY, timeout=3.0) as codelocks_client:
        yield codelocks_client


@pytest.fixture
def locks() -> LockDirectory:
    return load_locks(SAMPLE_LOCKS_FILE)


@pytest.fixture
def store() -> MemoryNetCodeStore:
    return MemoryNetCodeStore()


@pytest.fixture
def netcodes(client: CodelocksClient, store: MemoryNetCodeStore, clock: WallClock) -> NetCodes:
    return NetCodes(client, store, monthly_budget=10, clock=clock)
