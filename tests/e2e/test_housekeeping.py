"""The service keeps its disk in check: call records older than IVR_RECORD_DAYS go at start."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from support.line import running_line

from ivr.records import CallRecord, Outcome
from ivr.store import SqliteStore


async def test_records_older_than_record_days_are_purged_at_start(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "calls.db")
    now = time.time()
    for call_id, days in (("old", 31), ("recent", 29)):
        await store.save(CallRecord(call_id=call_id, route="keybox", caller_id="+15555550100",
                                    started=now - days * 86400, outcome=Outcome.UPDATE_CODE_READ))
    await store.close()
    async with running_line(tmp_path, record_days=30) as line:
        async with asyncio.timeout(10):
            while await line.service.services.records.get("old") is not None:
                await asyncio.sleep(0.01)
        assert await line.service.services.records.get("recent") is not None
