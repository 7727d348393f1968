"""The sandbox's wire, seen by a plain HTTP client: what any KimVoice stand-in must answer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import jwt
import pytest

from ivr.backends.kimvoice.sandbox import SandboxServer
from ivr.settings import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET


@pytest.fixture
async def http(sandbox: SandboxServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sandbox.url) as client:
        yield client


async def log_on(http: httpx.AsyncClient) -> str:
    response = await http.post(
        "/api/V1/Token/LogOn", json={"clientId": SANDBOX_CLIENT_ID, "clientSecret": SANDBOX_CLIENT_SECRET}
    )
    assert response.status_code == 200
    return response.json()


async def test_log_on_issues_a_48_hour_jwt_as_a_json_string(http: httpx.AsyncClient) -> None:
    token = await log_on(http)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["nbf"] == 48 * 3600
    assert claims["unique_name"] == SANDBOX_CLIENT_ID


async def test_log_on_accepts_pascal_case_and_refuses_bad_secrets(http: httpx.AsyncClient) -> None:
    ok = await http.post("/api/V1/Token/LogOn",
                         json={"ClientId": SANDBOX_CLIENT_ID, "ClientSecret": SANDBOX_CLIENT_SECRET})
    assert ok.status_code == 200
    bad = await http.post("/api/V1/Token/LogOn", json={"clientId": SANDBOX_CLIENT_ID, "clientSecret": "nope"})
    assert (bad.status_code, bad.content) == (401, b"")
    broken = await http.post("/api/V1/Token/LogOn", content=b"{not json")
    assert broken.status_code == 400 and "errorCode" not in broken.text


@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer not-a-jwt", "Basic abc"])
async def test_missing_or_bad_bearer_gets_a_generic_401(http: httpx.AsyncClient, authorization) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await http.get("/api/V1/HealthCheck", headers=headers)
    assert (response.status_code, response.content) == (401, b"")


async def test_a_token_signed_by_someone_else_is_refused(http: httpx.AsyncClient) -> None:
    claims = {"iss": "KimVoiceAPI", "jti": "x", "nbf": 0, "exp": 2**31}
    forged = jwt.encode(claims, "a guessed signing key, 32 bytes!", algorithm="HS256")
    response = await http.get("/api/V1/HealthCheck", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


async def test_out_of_range_parameters_get_a_generic_400(http: httpx.AsyncClient) -> None:
    auth = {"Authorization": f"Bearer {await log_on(http)}"}
    response = await http.get("/api/V1/Key/GetKeyHolders", params={"keyNumber": 9999, "pin": "2580"}, headers=auth)
    assert response.status_code == 400
    body = response.json()
    assert "errorCode" not in body and "keyNumber" in body["errors"]
    missing = await http.get("/api/V1/Key/GetKeyHolders", params={"keyNumber": 123456}, headers=auth)
    assert missing.status_code == 400


async def test_version_2_gets_a_generic_400(http: httpx.AsyncClient) -> None:
    auth = {"Authorization": f"Bearer {await log_on(http)}"}
    response = await http.get("/api/V2/HealthCheck", headers=auth)
    assert response.status_code == 400 and "errorCode" not in response.json()


async def test_paths_and_query_names_ignore_case(http: httpx.AsyncClient) -> None:
    auth = {"Authorization": f"Bearer {await log_on(http)}"}
    response = await http.get("/api/v1/key/getkeyholders?KEYNUMBER=123456&Pin=2580", headers=auth)
    assert response.status_code == 200
    assert response.json()["keyHolders"][0]["name"] == "Jane Agent"


async def test_api_error_body_for_a_refusal(http: httpx.AsyncClient) -> None:
    auth = {"Authorization": f"Bearer {await log_on(http)}"}
    query = {"keyNumber": 456789, "memberNumber": 5001, "podNumber": 1, "codeType": "Update"}
    response = await http.get("/api/V1/Key/ValidateKeyHolder", params=query, headers=auth)
    assert response.status_code == 403
    assert response.json() == {
        "errorCode": 2001,
        "message": "Key holder is not authorized: account past due.",
        "userMessage": "Your account is past due. Please contact your board office.",
    }


async def test_knobs_change_at_run_time_over_http(http: httpx.AsyncClient) -> None:
    auth = {"Authorization": f"Bearer {await log_on(http)}"}
    changed = await http.patch("/sandbox/knobs", json={"operational_mode": "DisasterRecovery", "fail_next": 1})
    assert changed.status_code == 200
    failed = await http.get("/api/V1/HealthCheck", headers=auth)
    assert (failed.status_code, failed.json()["errorCode"]) == (503, 9001)
    health = await http.get("/api/V1/HealthCheck", headers=auth)
    assert health.json()["operationalMode"] == "DisasterRecovery" and health.json()["message"]

    stats = (await http.get("/sandbox/stats")).json()
    assert stats["statuses"]["HealthCheck"] == {"503": 1, "200": 1}

    assert (await http.post("/sandbox/reset")).status_code == 204
    assert (await http.get("/sandbox/knobs")).json()["operational_mode"] == "Normal"


@pytest.mark.parametrize("change", [{"latency": -1}, {"failure_rate": 2}, {"mode": "x"}, [1]])
async def test_bad_knob_values_are_refused_with_a_reason(http: httpx.AsyncClient, change) -> None:
    response = await http.patch("/sandbox/knobs", json=change)
    assert response.status_code == 400 and response.json()["error"]
    assert (await http.get("/sandbox/knobs")).json()["latency"] == 0


async def test_revoked_tokens_get_401(http: httpx.AsyncClient) -> None:
    auth = {"Authorization": f"Bearer {await log_on(http)}"}
    assert (await http.post("/sandbox/revoke-tokens")).status_code == 204
    assert (await http.get("/api/V1/HealthCheck", headers=auth)).status_code == 401
