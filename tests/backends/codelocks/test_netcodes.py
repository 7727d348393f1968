"""`NetCodes` against the sandbox: who gets a NetCode, each asked of Codelocks once per lock and
period, the monthly budget, and what the log may hold."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest

from ivr.backends.codelocks import CodelocksClient, LockDirectory, MemoryNetCodeStore, NetCodes
from ivr.backends.codelocks.sandbox import SANDBOX_API_KEY, CodelocksSandboxServer, sandbox_netcode
from ivr.errors import NetCodeKeyRefusedError, NetCodeNotAllowedError, NetCodeUnavailableError, QuotaExhaustedError

ROUTE = "GET /n/1/netcode/{id}"


def _sent(codelocks: CodelocksSandboxServer) -> int:
    return codelocks.sandbox.requests[ROUTE]


async def test_an_allowed_member_gets_the_netcode_of_the_current_hour(
    netcodes: NetCodes, locks: LockDirectory, codelocks: CodelocksSandboxServer,
) -> None:
    lock = locks.find(4711)  # Europe/London, 5 hours; the clock says 13:20 UTC, 14:20 BST
    assert lock is not None
    netcode = await netcodes.get(lock, 5001)
    assert netcode.start == "2026-06-15 14:00"
    assert netcode.code == sandbox_netcode(lock.id, lock.model, lock.identifier, "2026-06-15 14:00", 4)
    assert netcode.code not in repr(netcode)
    assert netcode.masked.endswith(netcode.code[-2:]) and netcode.masked.startswith("*****")


async def test_a_member_not_allowed_gets_nothing_and_nothing_is_asked(
    netcodes: NetCodes, locks: LockDirectory, codelocks: CodelocksSandboxServer, store: MemoryNetCodeStore,
) -> None:
    lock = locks.find(4711)
    assert lock is not None
    with pytest.raises(NetCodeNotAllowedError):
        await netcodes.get(lock, 8003)
    with pytest.raises(NetCodeNotAllowedError):
        await netcodes.get(lock, None)
    assert _sent(codelocks) == 0 and not store.counts


async def test_a_netcode_is_asked_once_per_lock_and_period(
    netcodes: NetCodes, locks: LockDirectory, codelocks: CodelocksSandboxServer, clock: Any,
) -> None:
    lock = locks.find(4712)  # every member; America/Toronto, 1 day
    hourly = locks.find(4713)  # Europe/London, 1 hour
    assert lock is not None and hourly is not None
    first = await netcodes.get(lock, 7002)
    clock.advance(hours=5)
    again = await netcodes.get(lock, 5001)
    assert again == first and _sent(codelocks) == 1
    clock.advance(hours=12)  # 06:20 UTC on the 16th: 02:20 in Toronto, the next day
    following = await netcodes.get(lock, 5001)
    assert (first.start, following.start) == ("2026-06-15 00:00", "2026-06-16 00:00")
    assert following.code != first.code and _sent(codelocks) == 2

    await netcodes.get(hourly, 8003)
    clock.advance(minutes=39)  # 06:59 UTC: the same hour
    await netcodes.get(hourly, 8003)
    assert _sent(codelocks) == 3
    clock.advance(minutes=1)
    assert (await netcodes.get(hourly, 8003)).start == "2026-06-16 08:00"
    assert _sent(codelocks) == 4


async def test_concurrent_callers_of_one_lock_share_one_request(
    netcodes: NetCodes, locks: LockDirectory, codelocks: CodelocksSandboxServer,
) -> None:
    lock = locks.find(4712)
    assert lock is not None
    codelocks.sandbox.knobs.latency = 0.05
    got = await asyncio.gather(*(netcodes.get(lock, 5001) for _ in range(10)))
    assert len({netcode.code for netcode in got}) == 1
    assert _sent(codelocks) == 1


async def test_concurrent_callers_share_a_failure_too(
    netcodes: NetCodes, locks: LockDirectory, codelocks: CodelocksSandboxServer,
) -> None:
    lock = locks.find(4712)
    assert lock is not None
    codelocks.sandbox.knobs.fail_next = [502]
    results = await asyncio.gather(*(netcodes.get(lock, 5001) for _ in range(10)), return_exceptions=True)
    assert all(isinstance(result, NetCodeUnavailableError) for result in results)
    assert _sent(codelocks) == 1
    await netcodes.get(lock, 5001)  # nothing kept from the failure: the next caller asks again
    assert _sent(codelocks) == 2


async def test_a_caller_who_gives_up_leaves_the_netcode_kept_for_the_next(
    netcodes: NetCodes, locks: LockDirectory, codelocks: CodelocksSandboxServer,
) -> None:
    lock = locks.find(4712)
    assert lock is not None
    codelocks.sandbox.knobs.latency = 0.3
    with pytest.raises(NetCodeUnavailableError, match=r"within 0\.05 s"):
        await netcodes.get(lock, 5001, timeout=0.05)
    codelocks.sandbox.knobs.latency = 0.0
    await netcodes.get(lock, 5001)
    assert _sent(codelocks) == 1


async def test_our_budget_used_up_sends_nothing_until_next_month(
    client: CodelocksClient, store: MemoryNetCodeStore, locks: LockDirectory, codelocks: CodelocksSandboxServer,
    clock: Any,
) -> None:
    netcodes = NetCodes(client, store, monthly_budget=2, clock=clock)
    lock = locks.find(4713)
    assert lock is not None
    for _ in range(2):
        await netcodes.get(lock, 8003)
        clock.advance(hours=1)
    with pytest.raises(QuotaExhaustedError, match="monthly budget of 2"):
        await netcodes.get(lock, 8003)
    assert _sent(codelocks) == 2
    clock.now = clock.now.replace(month=7, day=1, hour=0)
    await netcodes.get(lock, 8003)
    assert _sent(codelocks) == 3
    assert store.counts == {"2026-06": 2, "2026-07": 1}


async def test_the_codelocks_quota_used_up_is_quota_exhausted(
    netcodes: NetCodes, locks: LockDirectory, codelocks: CodelocksSandboxServer,
) -> None:
    lock = locks.find(4712)
    assert lock is not None
    codelocks.sandbox.knobs.netcode_remaining = 0
    with pytest.raises(QuotaExhaustedError):
        await netcodes.get(lock, 5001)


async def test_a_502_is_unavailable(
    netcodes: NetCodes, locks: LockDirectory, codelocks: CodelocksSandboxServer,
) -> None:
    lock = locks.find(4712)
    assert lock is not None
    codelocks.sandbox.knobs.fail_next = [502]
    with pytest.raises(NetCodeUnavailableError, match="502"):
        await netcodes.get(lock, 5001)


def _events(log_text: io.StringIO, event: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in log_text.getvalue().splitlines() if line.strip()]
    return [line for line in lines if line.get("event") == event]


async def test_a_warning_at_80_percent_of_the_budget_once_a_month(
    client: CodelocksClient, store: MemoryNetCodeStore, locks: LockDirectory, clock: Any,
    log_text: io.StringIO,
) -> None:
    netcodes = NetCodes(client, store, monthly_budget=5, clock=clock)
    lock = locks.find(4713)
    assert lock is not None
    for _ in range(5):
        await netcodes.get(lock, 8003)
        clock.advance(hours=1)
    warnings = _events(log_text, "codelocks.budget_warning")
    assert len(warnings) == 1
    assert (warnings[0]["used"], warnings[0]["budget"], warnings[0]["month"]) == (4, 5, "2026-06")
    assert warnings[0]["level"] == "warning"


async def test_the_warning_comes_when_the_threshold_was_crossed_elsewhere(
    client: CodelocksClient, store: MemoryNetCodeStore, locks: LockDirectory, clock: Any,
    log_text: io.StringIO,
) -> None:
    """The count is shared: the call at 80% may have been `ivr netcode`'s, which logs errors only."""
    store.counts["2026-06"] = 8  # budget 10: the 8th call, at 80%, was taken by another process
    netcodes = NetCodes(client, store, monthly_budget=10, clock=clock)
    lock = locks.find(4713)
    assert lock is not None
    await netcodes.get(lock, 8003)
    warnings = _events(log_text, "codelocks.budget_warning")
    assert [(w["used"], w["budget"], w["month"], w["share"]) for w in warnings] == [(9, 10, "2026-06", "90%")]
    clock.advance(hours=1)
    await netcodes.get(lock, 8003)
    assert len(_events(log_text, "codelocks.budget_warning")) == 1
    assert store.counts["2026-06"] == 10


async def test_no_netcode_or_api_key_reaches_a_log_line(
    netcodes: NetCodes, locks: LockDirectory, codelocks: CodelocksSandboxServer, log_text: io.StringIO,
    store: MemoryNetCodeStore, clock: Any,
) -> None:
    lock = locks.find(4711)
    assert lock is not None
    netcode = await netcodes.get(lock, 5001)
    async with CodelocksClient(codelocks.url, "a-wrong-key-0123456789", timeout=3.0) as wrong:
        clock.advance(hours=1)
        with pytest.raises(NetCodeKeyRefusedError):
            await NetCodes(wrong, store, monthly_budget=10, clock=clock).get(lock, 5001)
    text = log_text.getvalue()
    assert _events(log_text, "codelocks.netcode_issued")
    assert _events(log_text, "codelocks.request")
    for secret in (netcode.code, SANDBOX_API_KEY, "a-wrong-key-0123456789", lock.identifier):
        assert secret not in text
