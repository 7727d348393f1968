"""The embedded store on a real SQLite file: records are never overwritten, old rows go, an
old database is carried forward, a damaged one is refused at start."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from ivr.errors import StoreError
from ivr.outbound import Outbound
from ivr.records import BackendCall, CallRecord, Outcome, Step
from ivr.settings import load_settings
from ivr.store import SqliteStore


def record(call_id: str, started: float, **fields: object) -> CallRecord:
    values: dict[str, object] = {
        "call_id": call_id, "route": "keybox", "caller_id": "+15555550100", "started": started,
        "ended": started + 10, "outcome": Outcome.UPDATE_CODE_READ, "codes": ["*****83"],
        "steps": [Step(name="welcome", at=0.1, ms=900)],
        "backend": [BackendCall(method="HealthCheck", at=0.05, ms=3.2, result="ok")],
    }
    return CallRecord.model_validate(values | fields)


async def test_records_round_trip_newest_first(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "calls.db")
    try:
        for n in range(3):
            await store.save(record(f"c{n}", 1000.0 + n))
        recent = await store.recent(2)
        assert [r.call_id for r in recent] == ["c2", "c1"]
        again = await store.get("c0")
        assert again is not None and again.steps[0].name == "welcome" and again.codes == ["*****83"]
        assert await store.get("nope") is None
    finally:
        await store.close()


async def test_a_repeated_call_id_keeps_both_records(tmp_path: Path) -> None:
    """The call id is Asterisk's `agi_uniqueid`, sent by the peer: a second call under the same id
    must not erase the first (a brute-force call's record, say)."""
    store = await SqliteStore.open(tmp_path / "calls.db")
    try:
        await store.save(record("same", 1000.0, detail="first"))
        await store.save(record("same", 1001.0, detail="second", outcome=Outcome.KEY_LOCKED))
        kept = await store.all_of("same")
        assert [r.detail for r in kept] == ["second", "first"]
        assert len(await store.recent()) == 2
    finally:
        await store.close()


def test_peer_supplied_values_are_capped() -> None:
    capped = CallRecord(call_id="x" * 5000, route="r" * 5000, caller_id="9" * 5000, detail="d" * 5000)
    assert (len(capped.call_id), len(capped.caller_id), len(capped.route), len(capped.detail or "")) == (
        128, 64, 64, 500)


async def test_purge_drops_records_older_than_the_cut(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "calls.db")
    try:
        now = time.time()
        await store.save(record("old", now - 91 * 86400))
        await store.save(record("new", now - 89 * 86400))
        dropped = await store.purge(records_before=now - 90 * 86400, lockouts_before=now - 900)
        assert dropped == 1
        assert [r.call_id for r in await store.recent()] == ["new"]
    finally:
        await store.close()


async def test_a_database_of_the_first_schema_is_carried_forward(tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE calls (call_id TEXT PRIMARY KEY, route TEXT NOT NULL, caller_id TEXT NOT NULL,"
            " started REAL NOT NULL, ended REAL, outcome TEXT, record TEXT NOT NULL);"
            "CREATE TABLE failures (kind TEXT NOT NULL, subject TEXT NOT NULL, at REAL NOT NULL);"
            "CREATE TABLE locks (kind TEXT NOT NULL, subject TEXT NOT NULL, until REAL NOT NULL);"
            "INSERT INTO failures VALUES ('key', '1234562580', 1.0);"
        )
        old = record("kept", 1000.0)
        db.execute("INSERT INTO calls VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (old.call_id, old.route, old.caller_id, old.started, old.ended, "update_code_read",
                    old.model_dump_json()))
    store = await SqliteStore.open(path)
    try:
        assert [r.call_id for r in await store.recent()] == ["kept"]
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert not {"calls", "failures", "locks"} & tables  # key numbers in clear are gone


async def test_a_damaged_database_stops_the_start_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    store = await SqliteStore.open(path)
    for n in range(200):
        await store.save(record(f"c{n}", 1000.0 + n))
    await store.close()
    data = bytearray(path.read_bytes())
    data[4096 * 2: 4096 * 3] = b"\xff" * 4096  # a page of the table, overwritten
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError) as raised:
        await SqliteStore.open(path)
    assert str(path) in str(raised.value) and "\n" not in str(raised.value)


async def test_a_deleted_database_is_noticed(tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    store = await SqliteStore.open(path)
    try:
        assert await store.healthy()
        path.unlink()
        assert not await store.healthy()
    finally:
        await store.close()


async def test_due_jobs_are_read_for_one_platform_or_for_those_not_listed(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "calls.db")
    try:
        jobs = Outbound(store, load_settings(data_dir=tmp_path, kazoo_url="http://127.0.0.1:9/v2",
                                             kazoo_api_key="k" * 20))
        made = {via: {(await jobs.submit({"kind": "bridge", "via": via, "to": "5551234", "agent": "user:abc"}))[0].id
                      for _ in range(3)} for via in ("asterisk", "kazoo")}
        now = time.time() + 1
        assert {job.id for job in await store.due_jobs(now, 10, via="kazoo")} == made["kazoo"]
        assert [job.via for job in await store.due_jobs(now, 2, via="asterisk")] == ["asterisk", "asterisk"]
        assert {job.id for job in await store.due_jobs(now, 10, not_via=["asterisk"])} == made["kazoo"]
        assert await store.due_jobs(now, 10, not_via=["asterisk", "kazoo"]) == []
        assert await store.due_jobs(now - 60, 10, via="kazoo") == []
    finally:
        await store.close()
