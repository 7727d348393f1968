"""The Kazoo sandbox over raw HTTP: crossbar's envelopes and auth, quickcall legs and their CDRs,
cellphone devices, the callflow hook, the date range, filters, knobs and counters."""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from ivr.outbound.platforms.kazoo import GREGORIAN_OFFSET, JOB_VARIABLE
from ivr.outbound.platforms.kazoo.sandbox import (
    AGENT_DEVICE_ID,
    AGENT_USER_ID,
    BUSY_NUMBER,
    FAILED_NUMBER,
    MAX_RANGE,
    NO_ANSWER_NUMBER,
    SANDBOX_ACCOUNT_ID,
    SANDBOX_ACCOUNT_NAME,
    SANDBOX_API_KEY,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
    CallflowCall,
    KazooKnobs,
    KazooSandbox,
    KazooSandboxServer,
)

ACCOUNT = f"/v2/accounts/{SANDBOX_ACCOUNT_ID}"


@pytest.fixture
async def server() -> AsyncIterator[KazooSandboxServer]:
    async with KazooSandboxServer(KazooSandbox(KazooKnobs(ring_seconds=0, call_seconds=0.01))) as running:
        yield running


@pytest.fixture
async def http(server: KazooSandboxServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=5.0) as plain:
        answer = await plain.put("/v2/api_auth", json={"data": {"api_key": SANDBOX_API_KEY}})
        plain.headers["X-Auth-Token"] = answer.json()["auth_token"]
        yield plain


async def cdrs_of(http: httpx.AsyncClient, job: str) -> list[dict[str, Any]]:
    answer = await http.get(f"{ACCOUNT}/cdrs", params={f"filter_custom_application_vars.{JOB_VARIABLE}": job})
    assert answer.status_code == 200
    rows: list[dict[str, Any]] = answer.json()["data"]
    return rows


async def test_user_auth_answers_201_with_a_token_and_the_account(server: KazooSandboxServer) -> None:
    credentials = hashlib.md5(f"{SANDBOX_USERNAME}:{SANDBOX_PASSWORD}".encode()).hexdigest()
    async with httpx.AsyncClient(base_url=server.url) as plain:
        answer = await plain.put("/v2/user_auth", json={"data": {"credentials": credentials,
                                                                 "account_name": SANDBOX_ACCOUNT_NAME}})
        body = answer.json()
        assert answer.status_code == 201 and body["status"] == "success" and body["auth_token"]
        assert body["data"]["account_id"] == SANDBOX_ACCOUNT_ID and body["request_id"]
        wrong = await plain.put("/v2/user_auth", json={"data": {"credentials": "0" * 32,
                                                                "account_name": SANDBOX_ACCOUNT_NAME}})
        assert wrong.status_code == 401
        assert {k: wrong.json()[k] for k in ("status", "error", "message")} == {
            "status": "error", "error": "401", "message": "invalid_credentials"}
        missing = await plain.put("/v2/user_auth", json={"data": {"account_name": SANDBOX_ACCOUNT_NAME}})
        assert missing.status_code == 400 and "credentials" in missing.json()["data"]


async def test_requests_need_a_live_token_of_the_account() -> None:
    now = [1_800_000_000.0]
    sandbox = KazooSandbox(KazooKnobs(token_lifetime=60), clock=lambda: now[0])
    async with KazooSandboxServer(sandbox) as server, httpx.AsyncClient(base_url=server.url) as plain:
        assert (await plain.get(f"{ACCOUNT}/channels")).status_code == 401
        token = (await plain.put("/v2/api_auth", json={"data": {"api_key": SANDBOX_API_KEY}})).json()["auth_token"]
        headers = {"X-Auth-Token": token}
        assert (await plain.get(f"{ACCOUNT}/channels", headers=headers)).status_code == 200
        other = await plain.get(f"/v2/accounts/{'a' * 32}/channels", headers=headers)
        assert other.status_code == 403 and other.json()["message"] == "forbidden"
        now[0] += 61
        expired = await plain.get(f"{ACCOUNT}/channels", headers=headers)
        assert expired.status_code == 401 and expired.json()["error"] == "401"


async def test_a_quickcall_answers_202_at_once_with_its_legs(server: KazooSandboxServer,
                                                            http: httpx.AsyncClient) -> None:
    answer = await http.get(f"{ACCOUNT}/users/{AGENT_USER_ID}/quickcall/555-0123",
                            params={JOB_VARIABLE: "job-1", "cid-number": "5559000", "auto_answer": "true"})
    assert answer.status_code == 202
    data = answer.json()["data"]
    [endpoint] = data["endpoints"]
    assert endpoint["outbound_call_id"].endswith("-quickcall") and endpoint["endpoint_id"] == AGENT_DEVICE_ID
    assert data["application_data"] == {"route": "5550123"}  # number_filter strips the dash
    assert data["custom_application_vars"] == {JOB_VARIABLE: "job-1", "cid-number": "5559000", "auto_answer": "true"}
    await server.sandbox.wait_calls()
    rows = await cdrs_of(http, "job-1")
    by_call = {row["call_id"]: row for row in rows}
    agent = by_call[endpoint["outbound_call_id"]]
    other = by_call[agent["other_leg_call_id"]]
    assert agent["hangup_cause"] == other["hangup_cause"] == "NORMAL_CLEARING"
    assert other["callee_id_number"] == "5550123" and other["other_leg_call_id"] == agent["call_id"]
    assert "custom_application_vars" not in agent  # fixed columns only
    full = (await http.get(f"{ACCOUNT}/cdrs/{agent['id']}")).json()["data"]
    assert full["custom_application_vars"][JOB_VARIABLE] == "job-1"
    assert server.sandbox.quickcalls["job-1"] == 1


@pytest.mark.parametrize(("number", "cause"), [(BUSY_NUMBER, "USER_BUSY"), (NO_ANSWER_NUMBER, "NO_ANSWER"),
                                               (FAILED_NUMBER, "UNALLOCATED_NUMBER")])
async def test_the_number_decides_the_second_leg(server: KazooSandboxServer, http: httpx.AsyncClient,
                                                 number: str, cause: str) -> None:
    await http.get(f"{ACCOUNT}/devices/{AGENT_DEVICE_ID}/quickcall/{number}", params={JOB_VARIABLE: "j"})
    await server.sandbox.wait_calls()
    rows = await cdrs_of(http, "j")
    assert sorted(row["hangup_cause"] for row in rows) == sorted(["NORMAL_CLEARING", cause])
    assert next(r for r in rows if r["hangup_cause"] == cause)["billing_seconds"] == "0"


async def test_an_agent_who_does_not_answer_leaves_one_leg(server: KazooSandboxServer,
                                                           http: httpx.AsyncClient) -> None:
    server.sandbox.knobs.agent_answers = False
    await http.get(f"{ACCOUNT}/users/{AGENT_USER_ID}/quickcall/5550123", params={JOB_VARIABLE: "j"})
    await server.sandbox.wait_calls()
    assert [row["hangup_cause"] for row in await cdrs_of(http, "j")] == ["NO_ANSWER"]


async def test_a_cellphone_rings_its_forward_number_and_needs_no_keypress_only_when_told(
        server: KazooSandboxServer, http: httpx.AsyncClient) -> None:
    made = {}
    for keypress in (True, False):
        forward = {"enabled": True, "number": BUSY_NUMBER, **({} if keypress else {"require_keypress": False})}
        answer = await http.put(f"{ACCOUNT}/devices", json={"data": {"name": f"cell {keypress}",
                                                                     "device_type": "cellphone",
                                                                     "call_forward": forward}})
        assert answer.status_code == 201
        made[keypress] = answer.json()["data"]
    assert made[True]["call_forward"]["require_keypress"] is True  # Kazoo's default
    for keypress, job in ((True, "kp"), (False, "nokp")):
        await http.get(f"{ACCOUNT}/devices/{made[keypress]['id']}/quickcall/5551000", params={JOB_VARIABLE: job})
    await server.sandbox.wait_calls()
    assert [row["hangup_cause"] for row in await cdrs_of(http, "kp")] == ["NO_ANSWER"]
    assert [row["hangup_cause"] for row in await cdrs_of(http, "nokp")] == ["USER_BUSY"]
    assert (await http.delete(f"{ACCOUNT}/devices/{made[False]['id']}")).status_code == 200
    gone = await http.delete(f"{ACCOUNT}/devices/{made[False]['id']}")
    assert gone.status_code == 404 and gone.json()["message"] == "bad_identifier"
    nameless = await http.put(f"{ACCOUNT}/devices", json={"data": {"device_type": "cellphone"}})
    assert nameless.status_code == 400 and nameless.json()["message"] == "validation error"


async def test_a_callflow_number_reaches_the_hook_which_may_own_the_call(server: KazooSandboxServer,
                                                                       http: httpx.AsyncClient) -> None:
    flow = {"module": "pivot", "data": {"voice_url": "http://ivr.example/kazoo/pivot/announce", "method": "get",
                                        "req_format": "kazoo"}, "children": {}}
    made = await http.put(f"{ACCOUNT}/callflows", json={"data": {"name": "announce", "numbers": ["5551000"],
                                                                 "flow": flow}})
    assert made.status_code == 201
    reached: list[CallflowCall] = []

    def hook(call: CallflowCall) -> bool:
        reached.append(call)
        return True  # the driver owns the call until it hangs up

    server.sandbox.on_callflow_call = hook
    device = (await http.put(f"{ACCOUNT}/devices", json={"data": {
        "name": "cell", "device_type": "cellphone",
        "call_forward": {"enabled": True, "number": "+15550123", "require_keypress": False}}})).json()["data"]
    answer = await http.get(f"{ACCOUNT}/devices/{device['id']}/quickcall/5551000",
                            params={JOB_VARIABLE: "job-n", "cid-number": "5559000"})
    call_id = answer.json()["data"]["endpoints"][0]["outbound_call_id"]
    while not reached:
        await server.sandbox.wait_next_change()
    [call] = reached
    assert (call.call_id, call.number, call.caller_id_number) == (call_id, "5551000", "5559000")
    assert call.variables[JOB_VARIABLE] == "job-n" and call.callflow["flow"]["module"] == "pivot"
    channels = (await http.get(f"{ACCOUNT}/channels")).json()["data"]
    assert [(ch["uuid"], ch["answered"], ch["destination"]) for ch in channels] == [(call_id, True, "+15550123")]
    assert server.sandbox.hang_up(call_id) and not server.sandbox.hang_up("no-such-call")
    await server.sandbox.wait_calls()
    rows = await cdrs_of(http, "job-n")
    assert [(row["call_id"], row["hangup_cause"]) for row in rows] == [(call_id, "NORMAL_CLEARING")]
    assert (await http.get(f"{ACCOUNT}/channels")).json()["data"] == []


async def test_callflows_keep_their_numbers_unique(http: httpx.AsyncClient) -> None:
    flow = {"module": "pivot", "data": {"voice_url": "http://ivr.example/p"}}
    first = (await http.put(f"{ACCOUNT}/callflows", json={"data": {"numbers": ["1000"], "flow": flow}})).json()
    clash = await http.put(f"{ACCOUNT}/callflows", json={"data": {"numbers": ["1000"], "flow": flow}})
    assert clash.status_code == 400 and "unique" in clash.json()["data"]["numbers"]
    moved = await http.post(f"{ACCOUNT}/callflows/{first['data']['id']}",
                            json={"data": {"numbers": ["1000", "1001"], "flow": flow}})
    assert moved.status_code == 200
    listed = (await http.get(f"{ACCOUNT}/callflows")).json()["data"]
    assert [(cf["numbers"], cf["modules"]) for cf in listed] == [(["1000", "1001"], ["pivot"])]
    bad_url = await http.put(f"{ACCOUNT}/callflows", json={"data": {"numbers": ["2000"], "flow": {
        "module": "pivot", "data": {"voice_url": "ftp://x"}}}})
    assert bad_url.status_code == 400


async def test_a_cdr_range_over_31_days_is_refused(server: KazooSandboxServer, http: httpx.AsyncClient) -> None:
    now = int(time.time()) + GREGORIAN_OFFSET
    ok = await http.get(f"{ACCOUNT}/cdrs", params={"created_from": now - MAX_RANGE, "created_to": now})
    assert ok.status_code == 200
    refused = await http.get(f"{ACCOUNT}/cdrs", params={"created_from": now - MAX_RANGE - 1, "created_to": now})
    body = refused.json()
    assert refused.status_code == 400 and body["message"] == "validation error"
    assert "date_range" in body["data"]["created_from"]
    backwards = await http.get(f"{ACCOUNT}/cdrs", params={"created_from": now, "created_to": now - 10})
    assert backwards.status_code == 400


async def test_filters_pages_and_a_204(server: KazooSandboxServer, http: httpx.AsyncClient) -> None:
    for job in ("a", "b", "b"):
        await http.get(f"{ACCOUNT}/devices/{AGENT_DEVICE_ID}/quickcall/5550123", params={JOB_VARIABLE: job})
    await server.sandbox.wait_calls()
    not_a = await http.get(f"{ACCOUNT}/cdrs", params={f"filter_not_custom_application_vars.{JOB_VARIABLE}": "a"})
    assert len(not_a.json()["data"]) == 4
    first = (await http.get(f"{ACCOUNT}/cdrs", params={"page_size": 4})).json()
    assert len(first["data"]) == 4 and first["next_start_key"]
    rest = (await http.get(f"{ACCOUNT}/cdrs", params={"page_size": 4, "start_key": first["next_start_key"]})).json()
    assert len(rest["data"]) == 2 and "next_start_key" not in rest
    assert {r["id"] for r in first["data"]}.isdisjoint(r["id"] for r in rest["data"])
    server.sandbox.knobs.empty_list_204 = True
    empty = await http.get(f"{ACCOUNT}/cdrs", params={"has_key": "no_such_key"})
    assert empty.status_code == 204 and empty.content == b""


async def test_unknown_endpoints_and_users_without_devices(server: KazooSandboxServer,
                                                           http: httpx.AsyncClient) -> None:
    unknown = await http.get(f"{ACCOUNT}/devices/{'0' * 32}/quickcall/5550123")
    assert unknown.status_code == 404 and unknown.json()["message"] == "bad_identifier"
    server.sandbox.devices.clear()
    lonely = await http.get(f"{ACCOUNT}/users/{AGENT_USER_ID}/quickcall/5550123")
    assert lonely.status_code == 500 and lonely.json()["message"] == "unspecified_fault"
    assert server.sandbox.quickcalls == {}


async def test_knobs_faults_and_counters(server: KazooSandboxServer, http: httpx.AsyncClient) -> None:
    patched = await http.patch("/sandbox/knobs", json={"fail_next": [503], "token_lifetime": 10})
    assert patched.status_code == 200 and patched.json()["fail_next"] == [503]
    assert (await http.patch("/sandbox/knobs", json={"no_such_knob": 1})).status_code == 400
    fault = await http.get(f"{ACCOUNT}/channels")
    assert fault.status_code == 503 and fault.json()["status"] == "error" and fault.json()["error"] == "503"
    await http.get(f"{ACCOUNT}/devices/{AGENT_DEVICE_ID}/quickcall/5550123", params={JOB_VARIABLE: "c"})
    counters = (await http.get("/sandbox/counters")).json()
    assert counters["quickcalls"] == {"c": 1} and counters["requests"]["GET /channels"] == 1


async def test_token_lifetime_is_a_knob() -> None:
    ticks = itertools.count(1_800_000_000, 2)
    sandbox = KazooSandbox(KazooKnobs(token_lifetime=3), clock=lambda: float(next(ticks)))
    async with KazooSandboxServer(sandbox) as server, httpx.AsyncClient(base_url=server.url) as plain:
        token = (await plain.put("/v2/api_auth", json={"data": {"api_key": SANDBOX_API_KEY}})).json()["auth_token"]
        assert (await plain.get(f"{ACCOUNT}/channels", headers={"X-Auth-Token": token})).status_code == 200
        assert (await plain.get(f"{ACCOUNT}/channels", headers={"X-Auth-Token": token})).status_code == 401
