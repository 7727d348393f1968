"""`/metrics` labels come from closed sets: what a peer sends cannot grow the page."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from support.line import running_line

from ivr.records import BackendCall, CallRecord, Outcome
from ivr.web import Metrics


async def test_made_up_routes_are_counted_as_unknown(tmp_path: Path) -> None:
    async with running_line(tmp_path) as line:
        for i in range(40):
            await line.call(route=f"made-up-{i}")
        await line.call("123456#2580#19")
        async with httpx.AsyncClient(base_url=line.service.http.url) as http:
            page = (await http.get("/metrics")).text
    assert "made-up" not in page
    assert 'ivr_calls_total{outcome="error",route="unknown"} 40.0' in page
    assert 'ivr_calls_total{outcome="update_code_read",route="keybox"} 1.0' in page


async def test_error_codes_a_backend_made_up_share_one_label() -> None:
    metrics = Metrics(routes=("keybox",))

    def ended(result: str) -> CallRecord:
        return CallRecord(call_id="c", route="keybox", caller_id="+1", outcome=Outcome.UNAVAILABLE,
                          backend=[BackendCall(method="GetKeyHolders", at=0, ms=5, result=result)])

    for result in ("ok", "ApiError 1001", "UnavailableError", "ApiError 4242"):
        await metrics.observe(ended(result))
    before = len(metrics.render().splitlines())
    for code in range(5000, 5100):
        await metrics.observe(ended(f"ApiError {code}"))
    page = metrics.render().decode()
    assert len(page.splitlines()) == before
    assert 'result="ApiError 1001"' in page and 'result="ApiError other"' in page and "4242" not in page


async def test_a_connection_that_never_became_a_call_is_counted(tmp_path: Path) -> None:
    """It leaves no call record, so /metrics is where an operator sees it."""
    async with running_line(tmp_path) as line:
        reader, writer = await asyncio.open_connection("127.0.0.1", line.service.agi.port)
        writer.write(b"agi_network: yes\n" + b"x" * 20_000)  # a line longer than any AGI line
        await writer.drain()
        assert await reader.read() == b""  # closed by the service
        writer.close()
        await line.call("123456#2580#19")
        async with httpx.AsyncClient(base_url=line.service.http.url) as http:
            page = (await http.get("/metrics")).text
    assert 'ivr_agi_connections_dropped_total{reason="no_environment"} 1.0' in page
    assert 'ivr_calls_total{outcome="update_code_read",route="keybox"} 1.0' in page


def test_drop_reasons_are_a_closed_set() -> None:
    metrics = Metrics(routes=("keybox",))
    for reason in ("refused", "evicted", "made-up"):
        metrics.agi_dropped(reason)
    page = metrics.render().decode()
    assert 'ivr_agi_connections_dropped_total{reason="refused"} 1.0' in page
    assert 'ivr_agi_connections_dropped_total{reason="unknown"} 1.0' in page and "made-up" not in page


async def test_a_queued_job_cancelled_through_the_api_is_counted_once(tmp_path: Path) -> None:
    """The runner counts the jobs it ends; one cancelled before any attempt ends in the API."""
    token = "metrics-api-token-0123456789abcdef"
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()  # queued, never placed while the test runs
    async with running_line(tmp_path, api="on", api_tokens=token) as line, httpx.AsyncClient(
            base_url=line.service.http.url, headers={"Authorization": f"Bearer {token}"}) as http:
        answer = await http.post("/v1/outbound/jobs", json={
            "kind": "notice", "to": "5551234", "message": "A test notice.", "not_before": later})
        assert answer.status_code == 201, answer.text
        job = answer.json()
        for _ in range(2):  # the second finds it final already: nothing more to count
            assert (await http.post(f"/v1/outbound/jobs/{job['id']}/cancel")).json()["state"] == "cancelled"
        page = (await http.get("/metrics")).text
    assert 'ivr_outbound_jobs_total{platform="asterisk",state="cancelled"} 1.0' in page
