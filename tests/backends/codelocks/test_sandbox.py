"""The Codelocks sandbox on its own: the guide's wire, the quota knob and counters over HTTP."""

from __future__ import annotations

import httpx

from ivr.backends.codelocks.sandbox import (
    QUOTA_MESSAGE,
    SANDBOX_API_KEY,
    CodelocksSandboxServer,
    sandbox_netcode,
)

KEY = {"x-api-key": SANDBOX_API_KEY}
QUERY = {"start": "2020-10-01 16:00", "duration": "4", "lockmodel": "KL1060C2", "identifier": "451254"}
PATH = "/n/1/netcode/202011161623"


async def test_the_guide_example_answers_its_netcode(codelocks: CodelocksSandboxServer) -> None:
    async with httpx.AsyncClient(base_url=codelocks.url) as http:
        answer = await http.get(PATH, params=QUERY, headers=KEY)
    assert answer.status_code == 200
    body = answer.json()
    assert body["ActualNetcode"] == sandbox_netcode("202011161623", "KL1060C2", "451254", "2020-10-01 16:00", 4)
    assert (body["DurationHours"], body["Expires"]) == (5, "2020-10-01 21:00:00")


async def test_the_guide_statuses(codelocks: CodelocksSandboxServer) -> None:
    async with httpx.AsyncClient(base_url=codelocks.url) as http:
        no_key = await http.get(PATH, params=QUERY)
        missing = await http.get(PATH, params={**QUERY, "identifier": ""}, headers=KEY)
        invalid = await http.get(PATH, params={**QUERY, "duration": "99"}, headers=KEY)
    assert (no_key.status_code, no_key.json()) == (403, {"message": "Missing or invalid authentication key"})
    assert (missing.status_code, missing.json()) == (404, {"message": "Missing required parameter"})
    assert (invalid.status_code, invalid.json()) == (400, {"message": "Invalid data supplied"})
    assert codelocks.sandbox.netcode_calls == {"2026-06": 2}  # a refused call counts, one without the key not


async def test_the_remaining_quota_is_a_knob_and_the_calls_are_counted(codelocks: CodelocksSandboxServer) -> None:
    async with httpx.AsyncClient(base_url=codelocks.url) as http:
        knobs = await http.patch("/sandbox/knobs", json={"netcode_remaining": 1})
        first = await http.get(PATH, params=QUERY, headers=KEY)
        second = await http.get(PATH, params=QUERY, headers=KEY)
        counters = (await http.get("/sandbox/counters")).json()
    assert knobs.json()["netcode_remaining"] == 1
    assert first.status_code == 200
    assert (second.status_code, second.json()) == (403, {"message": QUOTA_MESSAGE})
    assert counters["netcode_calls"] == {"2026-06": 1}
    assert counters["requests"] == {"GET /n/1/netcode/{id}": 2}


async def test_a_bad_knob_is_refused(codelocks: CodelocksSandboxServer) -> None:
    async with httpx.AsyncClient(base_url=codelocks.url) as http:
        refused = await http.patch("/sandbox/knobs", json={"quota_status": 500})
    assert refused.status_code == 400
    assert codelocks.sandbox.knobs.quota_status == 403
