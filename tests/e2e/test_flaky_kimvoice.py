"""The line rides out a flaky KimVoice: a request that fails once is tried again and the caller
still hears the code; a KimVoice that keeps failing opens the circuit breaker, and new calls hear
`system-unavailable` at once, without asking it; once it answers again, trial requests close it."""

from __future__ import annotations

import asyncio

import httpx
from support.line import MakeLine, running_line, today

from ivr.backends.kimvoice.sandbox import Knobs, update_code_for
from ivr.records import Outcome

BREAKER_SECONDS = 0.3


async def test_every_request_failing_once_still_reads_the_code(make_line: MakeLine) -> None:
    async with make_line(Knobs(fail_each_once=True, failure_status=500)) as line, \
            httpx.AsyncClient(base_url=line.service.http.url) as http:
        call = await line.call("123456#2580#1" "9")
        retries = (await http.get("/metrics")).text
    assert call.heard.said_digits == [update_code_for(123456, 5001, 5001, 1, today())]
    assert call.record.outcome is Outcome.UPDATE_CODE_READ
    assert all(line.sandbox.statuses[method, 500] == 1 for method in
               ("HealthCheck", "GetKeyHolders", "ValidateKeyHolder", "GetUpdateCode"))
    assert 'ivr_kimvoice_retries_total{cause="500",method="GetUpdateCode"} 1.0' in retries


async def test_a_kimvoice_that_keeps_failing_opens_the_breaker_and_recovery_closes_it(tmp_path) -> None:
    knobs = Knobs(failure_rate=1.0, failure_status=500)
    async with running_line(tmp_path, knobs, kimvoice_breaker_seconds=BREAKER_SECONDS, operator="") as line, \
            httpx.AsyncClient(base_url=line.service.http.url) as http:
        failing = await asyncio.gather(*(line.call("123456#") for _ in range(5)))
        asked = line.backend_requests()
        refused = await line.call("123456#")
        health = (await http.get("/healthz")).json()
        assert line.backend_requests() == asked, "an open breaker asks KimVoice nothing"

        line.sandbox.knobs.failure_rate = 0.0  # KimVoice is back
        for _ in range(200):
            if (await http.get("/healthz")).json()["kimvoice"]["breaker"] == "half_open":
                break
            await asyncio.sleep(BREAKER_SECONDS / 10)
        recovered = await line.call("123456#2580#1" "9")
        after = (await http.get("/healthz")).json()
        metrics = (await http.get("/metrics")).text

    assert all(c.prompts[-2:] == ["system-unavailable", "goodbye"] for c in failing)
    assert refused.prompts == ["system-unavailable", "goodbye"]
    assert refused.record.outcome is Outcome.UNAVAILABLE
    assert [(b.method, b.result) for b in refused.record.backend] == [("HealthCheck", "CircuitOpenError")]
    assert health["kimvoice"]["breaker"] == "open" and health["status"] == "degraded"
    assert recovered.record.outcome is Outcome.UPDATE_CODE_READ
    assert after["kimvoice"]["breaker"] == "closed"
    assert "ivr_kimvoice_breaker_state 0.0" in metrics and "ivr_kimvoice_breaker_opened_total 1.0" in metrics
