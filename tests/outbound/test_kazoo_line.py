"""Kazoo as a running line configures it: the service's own Kazoo platform against the Kazoo
sandbox on loopback, and the HTTP API refusing what that platform cannot place."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.line import Line, running_line

from ivr.outbound import Job, JobState
from ivr.outbound.platforms.kazoo.sandbox import (
    AGENT_USER_ID,
    SANDBOX_ACCOUNT_NAME,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
    KazooKnobs,
    KazooSandbox,
    KazooSandboxServer,
)

TOKEN = "kazoo-line-api-token-0123456789"
BRIDGE = {"kind": "bridge", "via": "kazoo", "to": "5551234", "agent": f"user:{AGENT_USER_ID}"}


@asynccontextmanager
async def kazoo_line(data_dir: Path, **settings: Any) -> AsyncIterator[tuple[Line, KazooSandbox]]:
    sandbox = KazooSandbox(KazooKnobs(ring_seconds=0))
    async with KazooSandboxServer(sandbox) as kazoo, running_line(
        data_dir, outbound_hours="00:00-24:00", kazoo_url=kazoo.crossbar_url, kazoo_username=SANDBOX_USERNAME,
        kazoo_password=SANDBOX_PASSWORD, kazoo_account_name=SANDBOX_ACCOUNT_NAME, **settings,
    ) as line:
        yield line, sandbox


async def final(line: Line, job_id: str) -> Job:
    async with asyncio.timeout(10):
        while not (job := await line.service.outbound.get(job_id)).final:
            await asyncio.sleep(0.02)
    return job


@pytest.mark.parametrize(("caller_id", "sent"), [
    ('"Key office" <5551000>', {"cid-name": "Key office", "cid-number": "5551000"}),
    ("5551000", {"cid-number": "5551000"}),
])
async def test_a_quickcall_carries_the_lines_caller_id(tmp_path: Path, caller_id: str, sent: dict[str, str]) -> None:
    async with kazoo_line(tmp_path, outbound_caller_id=caller_id) as (line, sandbox):
        job, _ = await line.service.outbound.submit(BRIDGE)
        done = await final(line, job.id)
    assert done.state is JobState.COMPLETED
    [quickcall] = sandbox.quickcall_log
    assert {k: v for k, v in quickcall.items() if k.startswith("cid-")} == sent


async def test_a_notice_via_kazoo_without_a_notice_number_is_refused_and_not_stored(tmp_path: Path) -> None:
    async with kazoo_line(tmp_path, api_tokens=TOKEN) as (line, _), httpx.AsyncClient(
        base_url=line.service.http.url, headers={"Authorization": f"Bearer {TOKEN}"},
    ) as http:
        answer = await http.post("/v1/outbound/jobs", json={
            "kind": "notice", "via": "kazoo", "to": "5551234", "message": "Your showing is confirmed."})
        listed = (await http.get("/v1/outbound/jobs")).json()
        bridge = await http.post("/v1/outbound/jobs", json=BRIDGE)  # what Kazoo can place still goes
    assert answer.status_code == 422
    [error] = answer.json()["errors"]
    assert error["field"] == "kind" and "IVR_KAZOO_NOTICE_NUMBER" in error["rule"]
    assert listed["jobs"] == []
    assert bridge.status_code == 201
