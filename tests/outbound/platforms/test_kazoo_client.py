"""The Kazoo client against the sandbox on a real loopback socket: both auths, token renewal,
the error envelope, quickcalls found again by their CDRs, devices, callflows, channels, bounds."""

from __future__ import annotations

import asyncio
import hashlib
import io
import itertools
import time
from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ivr.embedded_http import EmbeddedHttpServer
from ivr.errors import KazooRejectedError, PlatformRejectedError, PlatformUnavailableError, SettingsError
from ivr.outbound.platforms.kazoo import JOB_VARIABLE, MAX_CDR_RANGE, KazooClient, pivot_flow
from ivr.outbound.platforms.kazoo.sandbox import (
    AGENT_DEVICE_ID,
    AGENT_USER_ID,
    BUSY_NUMBER,
    SANDBOX_ACCOUNT_ID,
    SANDBOX_ACCOUNT_NAME,
    SANDBOX_API_KEY,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
    KazooKnobs,
    KazooSandbox,
    KazooSandboxServer,
)


def user_client(url: str, *, password: str = SANDBOX_PASSWORD, timeout: float = 2.0, account_id: str = "",
                ) -> KazooClient:
    return KazooClient(url, account_id=account_id, username=SANDBOX_USERNAME, password=password,
                       account_name=SANDBOX_ACCOUNT_NAME, timeout=timeout)


@pytest.fixture
async def server() -> AsyncIterator[KazooSandboxServer]:
    async with KazooSandboxServer(KazooSandbox(KazooKnobs(ring_seconds=0, call_seconds=0.01))) as running:
        yield running


@pytest.fixture
async def client(server: KazooSandboxServer) -> AsyncIterator[KazooClient]:
    async with user_client(server.crossbar_url, account_id=SANDBOX_ACCOUNT_ID) as kazoo:
        yield kazoo


# -- authentication -----------------------------------------------------------------------

async def test_user_auth_sends_the_md5_of_user_and_password_once(server: KazooSandboxServer,
                                                                 client: KazooClient) -> None:
    assert client.auth_method == "user_auth"
    await client.callflows()
    await client.channels()
    assert server.sandbox.requests["PUT /user_auth"] == 1
    assert server.sandbox.statuses["PUT /user_auth", 201] == 1


async def test_api_auth_and_the_account_from_its_answer(server: KazooSandboxServer) -> None:
    async with KazooClient(server.crossbar_url, api_key=SANDBOX_API_KEY, timeout=2.0) as kazoo:
        assert kazoo.auth_method == "api_auth"
        assert kazoo.account_id == ""
        assert await kazoo.authenticate() == SANDBOX_ACCOUNT_ID
        assert await kazoo.channels() == []
    assert server.sandbox.requests["PUT /api_auth"] == 1


async def test_wrong_password_names_the_settings_never_a_secret(server: KazooSandboxServer,
                                                                log_text: io.StringIO) -> None:
    wrong = "not-the-password-42"
    wrong_md5 = hashlib.md5(f"{SANDBOX_USERNAME}:{wrong}".encode()).hexdigest()
    async with user_client(server.crossbar_url, password=wrong) as kazoo:
        with pytest.raises(SettingsError) as caught:
            await kazoo.callflows()
    message = str(caught.value)
    for setting in ("IVR_KAZOO_USERNAME", "IVR_KAZOO_PASSWORD", "IVR_KAZOO_ACCOUNT_NAME"):
        assert setting in message
    assert "\n" not in message
    logged = log_text.getvalue()
    for secret in (wrong, wrong_md5):
        assert secret not in message and secret not in logged
    assert server.sandbox.requests["GET /callflows"] == 0


async def test_wrong_api_key_names_its_setting(server: KazooSandboxServer, log_text: io.StringIO) -> None:
    wrong = "f" * 64
    async with KazooClient(server.crossbar_url, api_key=wrong, timeout=2.0) as kazoo:
        with pytest.raises(SettingsError, match="IVR_KAZOO_API_KEY") as caught:
            await kazoo.authenticate()
    assert wrong not in str(caught.value) and wrong not in log_text.getvalue()


def test_missing_credentials_are_a_settings_error_at_once() -> None:
    with pytest.raises(SettingsError, match="IVR_KAZOO_API_KEY"):
        KazooClient("http://127.0.0.1:9/v2")
    with pytest.raises(SettingsError, match="IVR_KAZOO_ACCOUNT_NAME"):
        KazooClient("http://127.0.0.1:9/v2", username="u", password="p")


async def test_a_token_that_expires_mid_use_is_renewed_once(server: KazooSandboxServer,
                                                            client: KazooClient) -> None:
    await client.callflows()
    server.sandbox.revoke_tokens()
    assert await client.callflows() == []
    assert server.sandbox.requests["PUT /user_auth"] == 2
    assert server.sandbox.statuses["GET /callflows", 401] == 1


async def test_a_fresh_token_refused_again_is_a_settings_error() -> None:
    ticks = itertools.count(1_800_000_000, 10)  # every look at the clock is 10 s later: tokens die at once
    sandbox = KazooSandbox(KazooKnobs(token_lifetime=5), clock=lambda: float(next(ticks)))
    async with KazooSandboxServer(sandbox) as server, user_client(server.crossbar_url) as kazoo:
        with pytest.raises(SettingsError, match="fresh token") as caught:
            await kazoo.channels()
    assert "IVR_KAZOO_PASSWORD" in str(caught.value) and SANDBOX_PASSWORD not in str(caught.value)
    assert sandbox.requests["PUT /user_auth"] == 2
    assert sandbox.statuses["GET /channels", 401] == 2


async def test_an_old_token_is_renewed_before_use(server: KazooSandboxServer) -> None:
    now = [0.0]
    kazoo = KazooClient(server.crossbar_url, api_key=SANDBOX_API_KEY, timeout=2.0, clock=lambda: now[0])
    try:
        await kazoo.channels()
        now[0] = 3_500.0  # near Kazoo's hour
        await kazoo.channels()
    finally:
        await kazoo.aclose()
    assert server.sandbox.requests["PUT /api_auth"] == 2
    assert server.sandbox.statuses["GET /channels", 401] == 0


# -- errors ---------------------------------------------------------------------------------

async def test_5xx_429_and_timeouts_are_unavailable(server: KazooSandboxServer, client: KazooClient) -> None:
    await client.authenticate()
    server.sandbox.knobs.fail_next = [500, 503, 429]
    for status in ("500", "503", "429"):
        with pytest.raises(PlatformUnavailableError, match=status):
            await client.callflows()
    server.sandbox.knobs.latency = 1.0
    async with user_client(server.crossbar_url, account_id=SANDBOX_ACCOUNT_ID, timeout=0.2) as hurried:
        with pytest.raises(PlatformUnavailableError, match="no answer within"):
            await hurried.authenticate()


async def test_a_5xx_on_auth_is_unavailable_not_settings(server: KazooSandboxServer, client: KazooClient) -> None:
    server.sandbox.knobs.fail_next = [502]
    with pytest.raises(PlatformUnavailableError, match="502"):
        await client.authenticate()


async def test_the_error_envelope_becomes_a_rejected_error(server: KazooSandboxServer, client: KazooClient) -> None:
    with pytest.raises(KazooRejectedError) as caught:
        await client.quickcall("users", "0" * 32, "5550123")
    assert (caught.value.status, caught.value.error, caught.value.message) == (404, "404", "bad_identifier")
    assert isinstance(caught.value, PlatformRejectedError)
    await client.create_callflow(name="a", numbers=["5551000"], flow=pivot_flow("http://ivr.example/p"))
    with pytest.raises(KazooRejectedError, match="numbers/unique") as taken:
        await client.create_callflow(name="b", numbers=["5551000"], flow=pivot_flow("http://ivr.example/p"))
    assert taken.value.status == 400 and taken.value.message == "validation error"


async def test_another_account_is_forbidden(server: KazooSandboxServer) -> None:
    async with user_client(server.crossbar_url, account_id="a" * 32) as kazoo:
        with pytest.raises(KazooRejectedError, match="IVR_KAZOO_ACCOUNT_ID") as caught:
            await kazoo.channels()
    assert caught.value.status == 403


async def test_unreachable_and_closed_connections_are_unavailable(server: KazooSandboxServer,
                                                                  client: KazooClient) -> None:
    await client.authenticate()
    server.sandbox.knobs.down = True
    with pytest.raises(PlatformUnavailableError, match="connection broke"):
        await client.channels()
    server.sandbox.knobs.down = False
    assert await client.channels() == []
    stopped = KazooSandboxServer()
    await stopped.start()
    url = stopped.crossbar_url
    await stopped.stop()
    async with user_client(url) as kazoo:
        with pytest.raises(PlatformUnavailableError, match="cannot connect"):
            await kazoo.authenticate()


async def test_an_answer_past_the_bound_is_refused() -> None:
    async def auth(_: Request) -> Response:
        return JSONResponse({"auth_token": "t", "data": {"account_id": "a" * 32}, "status": "success"}, 201)

    async def huge(_: Request) -> Response:
        return Response(b'{"data": [' + b'{"uuid": "x"},' * (80 * 1024) + b'{}]}', media_type="application/json")

    app = Starlette(routes=[Route("/v2/api_auth", auth, methods=["PUT"]),
                            Route("/v2/accounts/{account}/channels", huge)])
    async with EmbeddedHttpServer(app) as server, \
            KazooClient(f"{server.url}/v2", api_key="k" * 64, timeout=2.0) as kazoo:
        with pytest.raises(PlatformUnavailableError, match="bytes"):
            await kazoo.channels()


async def test_an_error_text_never_carries_a_secret() -> None:
    secret_url = "https://ivr.example/kazoo/pivot/announce?secret=s3cr3t-pivot-value"

    async def auth(_: Request) -> Response:
        return JSONResponse({"auth_token": "t", "data": {"account_id": "a" * 32}, "status": "success"}, 201)

    async def echo(_: Request) -> Response:
        return JSONResponse({"status": "error", "error": "400", "message": f"bad voice_url {secret_url} k" + "k" * 63,
                             "data": {"flow.data.voice_url": {"pattern": {"message": "x", "cause": secret_url}}}},
                            status_code=400)

    app = Starlette(routes=[Route("/v2/api_auth", auth, methods=["PUT"]),
                            Route("/v2/accounts/{account}/callflows", echo, methods=["PUT"])])
    async with EmbeddedHttpServer(app) as server, \
            KazooClient(f"{server.url}/v2", api_key="k" * 64, timeout=2.0) as kazoo:
        with pytest.raises(KazooRejectedError) as caught:
            await kazoo.create_callflow(name="x", numbers=["1"], flow=pivot_flow(secret_url))
    text = str(caught.value)
    assert "s3cr3t-pivot-value" not in text and "k" * 64 not in text
    assert "flow.data.voice_url/pattern" in text and len(text) < 400


# -- the API ---------------------------------------------------------------------------------

async def test_a_quickcall_is_found_again_by_its_job_variable(server: KazooSandboxServer,
                                                              client: KazooClient) -> None:
    since = time.time()
    answer = await client.quickcall("users", AGENT_USER_ID, "+15550123", variables={JOB_VARIABLE: "job-7"},
                                    cid_number="5559000", cid_name="Keybox", auto_answer=True)
    assert len(answer.call_ids) == 1 and answer.call_ids[0].endswith("-quickcall")
    assert answer.variables[JOB_VARIABLE] == "job-7" and answer.variables["cid-number"] == "5559000"
    await client.quickcall("devices", AGENT_DEVICE_ID, BUSY_NUMBER, variables={JOB_VARIABLE: "job-8"})
    await server.sandbox.wait_calls()

    rows = await client.cdrs(since=since, variables={JOB_VARIABLE: "job-7"})
    assert {row.hangup_cause for row in rows} == {"NORMAL_CLEARING"} and len(rows) == 2
    assert all(JOB_VARIABLE not in row.raw for row in rows)  # the list has fixed columns only
    agent_leg = next(row for row in rows if row.call_id == answer.call_ids[0])
    full = await client.cdr(agent_leg.cdr_id)
    assert full is not None and full["custom_application_vars"][JOB_VARIABLE] == "job-7"
    busy = await client.cdrs(since=since, variables={JOB_VARIABLE: "job-8"})
    assert sorted(row.hangup_cause for row in busy) == ["NORMAL_CLEARING", "USER_BUSY"]
    assert server.sandbox.quickcalls == {"job-7": 1, "job-8": 1}
    assert await client.cdr("202001-unknown") is None


async def test_cdr_pages_are_followed_and_an_empty_204_is_an_empty_list(server: KazooSandboxServer,
                                                                       client: KazooClient) -> None:
    since = time.time()
    for _ in range(5):
        await client.quickcall("devices", AGENT_DEVICE_ID, "5550123", variables={JOB_VARIABLE: "job-p"})
    await server.sandbox.wait_calls()
    rows = await client.cdrs(since=since, variables={JOB_VARIABLE: "job-p"}, page_size=3)
    assert len(rows) == 10 and len({row.cdr_id for row in rows}) == 10
    assert server.sandbox.requests["GET /cdrs"] == 4
    server.sandbox.knobs.empty_list_204 = True
    assert await client.cdrs(since=since, variables={JOB_VARIABLE: "nobody"}) == []


async def test_a_cdr_range_over_31_days_is_not_asked(client: KazooClient) -> None:
    with pytest.raises(ValueError, match="CDR range"):
        await client.cdrs(since=time.time() - MAX_CDR_RANGE - 60)


async def test_a_cellphone_device_is_created_and_deleted(server: KazooSandboxServer, client: KazooClient) -> None:
    device_id = await client.create_cellphone(name="keybox job-9", number="+15550123")
    doc = await client.device(device_id)
    assert doc is not None and doc["device_type"] == "cellphone"
    assert doc["call_forward"] == {"enabled": True, "number": "+15550123", "require_keypress": False,
                                   "keep_caller_id": True, "substitute": True, "direct_calls_only": False,
                                   "failover": False, "ignore_early_media": True}
    assert await client.delete_device(device_id) is True
    assert await client.delete_device(device_id) is False
    assert await client.device(device_id) is None


async def test_callflows_are_created_listed_and_updated(client: KazooClient) -> None:
    made = await client.create_callflow(name="keybox announce", numbers=["5551000"],
                                        flow=pivot_flow("http://ivr.example/kazoo/pivot/announce?secret=x"))
    assert made.numbers == ("5551000",)
    listed = await client.callflows()
    assert [(cf.callflow_id, cf.numbers) for cf in listed] == [(made.callflow_id, ("5551000",))]
    assert listed[0].flow is None  # listings carry no flow
    updated = await client.update_callflow(made.callflow_id, name="keybox announce", numbers=["5551000", "5551001"],
                                           flow=pivot_flow("http://ivr.example/kazoo/pivot/announce?secret=y", "post"))
    fetched = await client.callflow(made.callflow_id)
    assert fetched is not None and fetched.numbers == updated.numbers == ("5551000", "5551001")
    assert fetched.flow == {"module": "pivot", "children": {},
                            "data": {"voice_url": "http://ivr.example/kazoo/pivot/announce?secret=y",
                                     "method": "post", "req_format": "kazoo"}}
    assert "secret" not in repr(fetched)
    assert await client.callflow("0" * 32) is None


async def test_channels_show_the_calls_in_progress(server: KazooSandboxServer, client: KazooClient) -> None:
    server.sandbox.knobs.call_seconds = 30
    answer = await client.quickcall("users", AGENT_USER_ID, "5550123", variables={JOB_VARIABLE: "job-c"})
    async with asyncio.timeout(5):
        while len(channels := await client.channels()) < 2:
            await asyncio.sleep(0.005)
    assert answer.call_ids[0] in {ch.uuid for ch in channels} and all(ch.answered for ch in channels)
    assert server.sandbox.hang_up(answer.call_ids[0])
    await server.sandbox.wait_calls()
    assert await client.channels() == []


async def test_user_auth_body_is_the_documented_md5() -> None:
    seen: list[object] = []

    async def auth(request: Request) -> Response:
        seen.append(await request.json())
        return JSONResponse({"auth_token": "t", "data": {"account_id": "a" * 32}, "status": "success"}, 201)

    app = Starlette(routes=[Route("/v2/user_auth", auth, methods=["PUT"])])
    async with EmbeddedHttpServer(app) as server, KazooClient(
            f"{server.url}/v2", username="john@example.com", password="m32c6NfqYEt", account_name="acme",
            timeout=2.0) as kazoo:
        await kazoo.authenticate()
    # user_authentication.md: echo -n 'john@example.com:m32c6NfqYEt' | md5sum
    assert seen == [{"data": {"credentials": "82a2dc91686ec828a67152d45a5c5ef7", "account_name": "acme"}}]
