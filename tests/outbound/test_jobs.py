"""Submitting, reading and cancelling jobs (`Outbound`) over a real SQLite store: every rule of a
request, idempotency keys, the code kept only until the job is final, cancels that cannot race
the runner."""

from __future__ import annotations

import io
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ivr.errors import JobConflictError, JobInputError, JobNotFoundError
from ivr.outbound import Attempt, JobState, Outbound
from ivr.settings import load_settings
from ivr.store import SqliteStore
from ivr.web import Metrics

NOTICE = {"kind": "notice", "to": "5551234", "message": "Your showing is confirmed."}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = await SqliteStore.open(tmp_path / "calls.db")
    yield store
    await store.close()


@pytest.fixture
def jobs(store: SqliteStore, tmp_path: Path) -> Outbound:
    return Outbound(store, load_settings(data_dir=tmp_path, languages=["en", "fr"]))


async def test_a_notice_is_kept_queued_with_its_defaults(jobs: Outbound) -> None:
    job, created = await jobs.submit({**NOTICE, "code": "4384341"})
    assert created
    assert (job.state, job.via, job.language, job.max_attempts) == (JobState.QUEUED, "asterisk", "en", 3)
    assert [(e.state, e.reason) for e in job.history] == [(JobState.QUEUED, "submitted")]
    assert job.view()["code"] == "*****41"
    assert (await jobs.get(job.id)).code == "4384341"  # the runner needs it until the end


@pytest.mark.parametrize(("change", "field", "rule"), [
    ({"to": "555-1234"}, "to", "digits"),
    ({"to": "12"}, "to", "digits"),
    ({"to": "+123456"}, "to", "digits"),
    ({"message": "x" * 501}, "message", "1 to 500"),
    ({"message": "   "}, "message", "1 to 500"),
    ({"message": "bell\x07"}, "message", "control"),
    ({"code": "12ab"}, "code", "4 to 12 digits"),
    ({"code": "123"}, "code", "4 to 12 digits"),
    ({"language": "de"}, "language", "en, fr"),
    ({"via": "ictcore"}, "via", "IVR_ICTCORE_URL"),
    ({"via": "kazoo"}, "via", "IVR_KAZOO_URL"),
    ({"via": "pstn"}, "via", ""),
    ({"max_attempts": 0}, "max_attempts", ""),
    ({"agent": "PJSIP/agent1"}, "agent", "only a bridge"),
    ({"not_before": "2026-12-03T09:00:00"}, "not_before", "time zone"),
    ({"not_before": (datetime.now(UTC) + timedelta(days=200)).isoformat()}, "not_before", "90 days"),
    ({"colour": "red"}, "colour", "not a field"),
])
async def test_a_broken_rule_is_named_and_nothing_is_stored(
    jobs: Outbound, change: dict[str, Any], field: str, rule: str
) -> None:
    with pytest.raises(JobInputError) as caught:
        await jobs.submit({**NOTICE, **change})
    assert caught.value.field == field
    assert rule in caught.value.rule
    assert (await jobs.list())[0] == []


async def test_a_bridge_needs_an_agent_and_takes_no_message(jobs: Outbound) -> None:
    with pytest.raises(JobInputError, match="agent"):
        await jobs.submit({"kind": "bridge", "to": "5551234"})
    with pytest.raises(JobInputError, match="message"):
        await jobs.submit({"kind": "bridge", "to": "5551234", "agent": "PJSIP/agent1", "message": "hi"})
    with pytest.raises(JobInputError, match="agent"):
        await jobs.submit({"kind": "bridge", "to": "5551234", "agent": "PJSIP/agent1&PJSIP/x"})
    job, _ = await jobs.submit({"kind": "bridge", "to": "+15145551234", "agent": "PJSIP/agent1"})
    assert job.agent == "PJSIP/agent1"


async def test_an_idempotency_key_gives_back_its_job_and_refuses_another_request(jobs: Outbound) -> None:
    first, created = await jobs.submit(NOTICE, idempotency_key="order-17")
    again, created_again = await jobs.submit(dict(NOTICE), idempotency_key="order-17")
    assert created and not created_again
    assert again.id == first.id
    with pytest.raises(JobConflictError):
        await jobs.submit({**NOTICE, "to": "5559999"}, idempotency_key="order-17")
    with pytest.raises(JobInputError, match="Idempotency-Key"):
        await jobs.submit({**NOTICE, "idempotency_key": "a"}, idempotency_key="b")
    assert len((await jobs.list())[0]) == 1


async def test_an_idempotency_key_older_than_a_day_makes_a_new_job(store: SqliteStore, jobs: Outbound) -> None:
    first, _ = await jobs.submit(NOTICE, idempotency_key="k1")
    await store._db.execute("UPDATE idempotency_keys SET created = created - 90000")
    await store._db.commit()
    second, created = await jobs.submit(NOTICE, idempotency_key="k1")
    assert created and second.id != first.id


async def test_unknown_and_malformed_ids_are_not_found(jobs: Outbound) -> None:
    for job_id in ("01ARZ3NDEKTSV4RRFFQ69G5FAV", "'; DROP TABLE jobs; --", "x" * 5000):
        with pytest.raises(JobNotFoundError):
            await jobs.get(job_id)


async def test_list_pages_newest_first_and_filters_by_state(jobs: Outbound) -> None:
    made = [(await jobs.submit({**NOTICE, "to": f"555{n:04d}"}))[0].id for n in range(5)]
    await jobs.cancel(made[1])
    page, cursor = await jobs.list(limit=2)
    assert [j.id for j in page] == made[:2:-1][:2] == [made[4], made[3]]
    rest, end = await jobs.list(limit=10, cursor=cursor)
    assert [j.id for j in rest] == [made[2], made[1], made[0]] and end is None
    assert [j.id for j in (await jobs.list("cancelled"))[0]] == [made[1]]
    with pytest.raises(JobInputError, match="status"):
        await jobs.list("done")
    with pytest.raises(JobInputError, match="limit"):
        await jobs.list(limit=0)


async def test_cancel_of_a_queued_job_is_final_and_erases_the_code(store: SqliteStore, jobs: Outbound) -> None:
    job, _ = await jobs.submit({**NOTICE, "code": "4384341"})
    cancelled = await jobs.cancel(job.id)
    assert cancelled.state is JobState.CANCELLED and cancelled.code is None
    async with store._db.execute("SELECT COUNT(*) FROM jobs WHERE code IS NOT NULL") as cursor:
        assert (await cursor.fetchone()) == (0,)
    assert (await jobs.cancel(job.id)).state is JobState.CANCELLED  # once final, nothing changes


async def test_a_claimed_job_cannot_be_cancelled_into_a_second_state(store: SqliteStore, jobs: Outbound) -> None:
    job, _ = await jobs.submit(NOTICE)
    claimed = await store.start_attempt(Attempt(job_id=job.id, number=1, platform="asterisk", started=0), "try")
    assert claimed is not None and claimed.state is JobState.DIALING
    after = await jobs.cancel(job.id)
    assert after.state is JobState.DIALING and after.cancel_requested
    # and the claim of a cancelled job fails: a cancel and a claim cannot both win
    other, _ = await jobs.submit(NOTICE)
    await jobs.cancel(other.id)
    assert await store.start_attempt(Attempt(job_id=other.id, number=1, platform="asterisk", started=0), "t") is None


async def test_a_final_job_refuses_every_move_the_runner_makes(store: SqliteStore, jobs: Outbound) -> None:
    job, _ = await jobs.submit(NOTICE)
    await jobs.cancel(job.id)
    for state in (JobState.QUEUED, JobState.RINGING, JobState.COMPLETED, JobState.FAILED):
        moved = await store.transition(job.id, state, "late news",
                                       only_from={JobState.QUEUED, JobState.DIALING, JobState.RINGING})
        assert moved is None
    assert (await jobs.get(job.id)).state is JobState.CANCELLED


async def test_the_v2_database_gains_the_job_tables(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE call_records (id INTEGER PRIMARY KEY AUTOINCREMENT, call_id TEXT NOT NULL,"
            " route TEXT NOT NULL, caller_id TEXT NOT NULL, started REAL NOT NULL, ended REAL, outcome TEXT,"
            " record TEXT NOT NULL);"
            "CREATE TABLE announcements (job_id TEXT PRIMARY KEY, created REAL NOT NULL, announcement TEXT NOT NULL);"
            "PRAGMA user_version = 2;"
        )
    store = await SqliteStore.open(path)
    try:
        job, _ = await Outbound(store, load_settings(data_dir=tmp_path)).submit(NOTICE)
        assert (await store.job(job.id)) is not None
        async with store._db.execute("SELECT name FROM sqlite_master WHERE name = 'announcements'") as cursor:
            assert await cursor.fetchone() is None
    finally:
        await store.close()


async def test_even_at_debug_no_code_reaches_a_log(tmp_path: Path, log_text: io.StringIO) -> None:
    """aiosqlite logs each statement with its parameters at DEBUG: it is held to warnings."""
    store = await SqliteStore.open(tmp_path / "debug.db")
    try:
        jobs = Outbound(store, load_settings(data_dir=tmp_path))
        job, _ = await jobs.submit({**NOTICE, "code": "73915024"})
        await jobs.get(job.id)
    finally:
        await store.close()
    logged = log_text.getvalue()
    assert "73915024" not in logged and "INSERT INTO jobs" not in logged


async def test_a_queued_job_cancelled_is_counted_once_among_the_jobs_ended(store: SqliteStore, jobs: Outbound) -> None:
    metrics = Metrics(["announce"])
    jobs.on_final.append(metrics.job_final)
    job, _ = await jobs.submit(NOTICE)
    await jobs.cancel(job.id)
    await jobs.cancel(job.id)  # already final: nothing more to count
    counted = [line for line in metrics.render().decode().splitlines() if line.startswith("ivr_outbound_jobs_total")]
    assert counted == ['ivr_outbound_jobs_total{platform="asterisk",state="cancelled"} 1.0']
