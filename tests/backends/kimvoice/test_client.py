"""The KimVoice client against the sandbox over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest
from support.raw_http import http, with_token

from ivr.backends.kimvoice import CodeType, KimVoiceClient, OperationalMode
from ivr.backends.kimvoice.sandbox import UNKNOWN_KEY, SandboxServer, cbs_code_for, update_code_for
from ivr.errors import (
    ApiError,
    AuthenticationError,
    DeadlineExceededError,
    ErrorCode,
    MaintenanceError,
    NotAuthorizedError,
    UnavailableError,
)
from ivr.settings import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET


def today(clock) -> str:
    return datetime.fromtimestamp(clock(), UTC).date().isoformat()


# -- every method ------------------------------------------------------------------------


async def test_health_check_reports_mode_and_message(client: KimVoiceClient, sandbox: SandboxServer) -> None:
    assert (await client.health_check()).operational_mode is OperationalMode.NORMAL

    sandbox.sandbox.knobs.operational_mode = OperationalMode.DISASTER_RECOVERY
    sandbox.sandbox.knobs.message = "Backup site in use."
    health = await client.health_check()
    assert health.operational_mode is OperationalMode.DISASTER_RECOVERY
    assert health.message == "Backup site in use."


async def test_key_holders_one_member_one_pod(client: KimVoiceClient) -> None:
    (holder,) = (await client.get_key_holders(123456, "2580")).key_holders
    assert (holder.key_number, holder.primary_member, holder.name) == (123456, 5001, "Jane Agent")
    assert [m.member_number for m in holder.members] == [5001]
    assert holder.pods == [1]
    assert holder.cbs_instructions


async def test_key_holders_several_members_and_both_pods(client: KimVoiceClient) -> None:
    (holder,) = (await client.get_key_holders(234567, "1357")).key_holders
    assert [m.member_number for m in holder.members] == [5001, 7002, 8003]
    assert holder.pods == [1, 2]


async def test_key_holders_two_records(client: KimVoiceClient) -> None:
    records = (await client.get_key_holders(345678, "2468")).key_holders
    assert [(r.primary_member, r.pods) for r in records] == [(5001, [1]), (7002, [2])]


async def test_identify_key_holder(client: KimVoiceClient) -> None:
    who = await client.identify_key_holder(123456)
    assert (who.name, who.office_name, who.office_phone) == ("Jane Agent", "Lakeside Realty", "+15555550123")


async def test_update_code_after_validation_is_the_predicted_one(client: KimVoiceClient, sandbox_clock) -> None:
    validation = await client.validate_key_holder(234567, 7002, 2, CodeType.UPDATE)
    assert validation.is_authorized and validation.code_type is CodeType.UPDATE

    code = await client.get_update_code(234567, 5001, 7002, 2)
    assert code.update_code == update_code_for(234567, 5001, 7002, 2, today(sandbox_clock))
    assert len(code.update_code) == 7 and code.instructions
    again = await client.get_update_code(234567, 5001, 7002, 2)
    assert again.update_code == code.update_code


async def test_update_codes_differ_by_member_and_pod(client: KimVoiceClient) -> None:
    codes = set()
    for member, pod in [(5001, 1), (7002, 1), (7002, 2)]:
        await client.validate_key_holder(234567, member, pod, "Update")
        codes.add((await client.get_update_code(234567, 5001, member, pod)).update_code)
    assert len(codes) == 3


async def test_cbs_code_after_validation(client: KimVoiceClient, sandbox_clock) -> None:
    await client.validate_key_holder(123456, 5001, 1, CodeType.CBS)
    code = await client.get_cbs_code(90210, "4321", 123456, 5001)
    assert code.cbs_code == cbs_code_for(90210, 123456, 5001, today(sandbox_clock))
    assert len(code.cbs_code) == 6


# -- every error code -----------------------------------------------------------------------


async def assert_api_error(call, code: ErrorCode, status: int) -> ApiError:
    with pytest.raises(ApiError) as caught:
        await call
    assert (caught.value.code, caught.value.status) == (code, status)
    return caught.value


async def test_1001_wrong_pin_and_unknown_key(client: KimVoiceClient) -> None:
    await assert_api_error(client.get_key_holders(123456, "2581"), ErrorCode.PIN_MISMATCH, 404)
    await assert_api_error(client.get_key_holders(UNKNOWN_KEY, "2580"), ErrorCode.PIN_MISMATCH, 404)


async def test_1002_identify_unknown_key(client: KimVoiceClient) -> None:
    await assert_api_error(client.identify_key_holder(UNKNOWN_KEY), ErrorCode.KEY_NOT_FOUND, 404)


@pytest.mark.parametrize(
    ("key", "code", "spoken"),
    [
        (456789, ErrorCode.NON_PAYMENT, "Your account is past due. Please contact your board office."),
        (567890, ErrorCode.KEY_NOT_ASSIGNED, None),
        (678901, ErrorCode.KEY_HOLDER_SUSPENDED, "Your key privileges are suspended. Please call your board office."),
    ],
)
async def test_2001_to_2003_not_authorized(client: KimVoiceClient, key: int, code: ErrorCode, spoken) -> None:
    error = await assert_api_error(client.validate_key_holder(key, 5001, 1, "Update"), code, 403)
    assert isinstance(error, NotAuthorizedError)
    assert error.user_message == spoken


async def test_a_200_with_is_authorized_false_is_not_authorized(serve, make_client) -> None:
    """Fail closed: a validation KimVoice answers but does not grant lets no code follow, for
    every caller of the client (the flow, `ivr outbound code`)."""
    refused = b'{"isAuthorized": false, "keyNumber": 123456, "memberNumber": 5001, "podNumber": 1, ' \
              b'"codeType": "Update"}'
    url, raw = await serve(with_token(http("200 OK", refused)))
    with pytest.raises(NotAuthorizedError) as caught:
        await make_client(url).validate_key_holder(123456, 5001, 1, CodeType.UPDATE)
    assert str(caught.value) == ("KimVoice ValidateKeyHolder answered isAuthorized false: "
                                 "the key holder may not have codes")
    assert (caught.value.status, caught.value.user_message) == (200, None)
    assert sum("ValidateKeyHolder" in r for r in raw.requests) == 1  # KimVoice's answer: not retried


async def test_2002_member_or_pod_not_on_the_key(client: KimVoiceClient) -> None:
    await assert_api_error(client.validate_key_holder(123456, 7002, 1, "Update"), ErrorCode.KEY_NOT_ASSIGNED, 403)
    await assert_api_error(client.validate_key_holder(123456, 5001, 2, "Update"), ErrorCode.KEY_NOT_ASSIGNED, 403)


async def test_2004_code_without_validation(client: KimVoiceClient) -> None:
    await assert_api_error(client.get_update_code(123456, 5001, 5001, 1), ErrorCode.NOT_VALIDATED, 409)
    await assert_api_error(client.get_cbs_code(90210, "4321", 123456, 5001), ErrorCode.NOT_VALIDATED, 409)
    # An update-code validation does not open the CBS code, nor another pod's update code.
    await client.validate_key_holder(234567, 5001, 1, "Update")
    await assert_api_error(client.get_update_code(234567, 5001, 5001, 2), ErrorCode.NOT_VALIDATED, 409)
    await assert_api_error(client.get_cbs_code(90210, "4321", 234567, 5001), ErrorCode.NOT_VALIDATED, 409)


async def test_2004_validation_expires_after_ten_minutes(client: KimVoiceClient, sandbox_clock) -> None:
    await client.validate_key_holder(123456, 5001, 1, "Update")
    sandbox_clock.advance(601)
    await assert_api_error(client.get_update_code(123456, 5001, 5001, 1), ErrorCode.NOT_VALIDATED, 409)


async def test_3001_unknown_box_and_3002_wrong_shackle(client: KimVoiceClient) -> None:
    await client.validate_key_holder(123456, 5001, 1, "Cbs")
    await assert_api_error(client.get_cbs_code(90211, "4321", 123456, 5001), ErrorCode.BOX_NOT_FOUND, 404)
    await assert_api_error(client.get_cbs_code(90210, "4322", 123456, 5001), ErrorCode.SHACKLE_MISMATCH, 400)


async def test_9001_maintenance_is_unavailable(client: KimVoiceClient, sandbox: SandboxServer) -> None:
    await client.log_on()
    sandbox.sandbox.knobs.failure_rate = 1.0
    with pytest.raises(MaintenanceError) as caught:
        await client.health_check()
    assert isinstance(caught.value, UnavailableError)
    assert caught.value.code is ErrorCode.MAINTENANCE


# -- the JWT's life ------------------------------------------------------------------------


async def test_log_on_is_lazy_and_the_token_is_reused(client: KimVoiceClient, sandbox: SandboxServer) -> None:
    assert sandbox.sandbox.requests["LogOn"] == 0
    await client.health_check()
    await client.get_key_holders(123456, "2580")
    assert sandbox.sandbox.requests["LogOn"] == 1


async def test_token_refreshed_ahead_of_expiry(client: KimVoiceClient, sandbox: SandboxServer, client_clock) -> None:
    sandbox.sandbox.knobs.token_lifetime = 100
    await client.health_check()
    first = client.tokens.current
    assert first is not None and first.expires - first.not_before == 100

    client_clock.advance(80)  # still valid: no log-on yet
    await client.health_check()
    assert sandbox.sandbox.requests["LogOn"] == 1

    client_clock.advance(12)  # inside the last tenth of its life: refreshed in the background
    await client.health_check()
    await _until(lambda: client.tokens.current is not first)
    assert sandbox.sandbox.requests["LogOn"] == 2


async def test_expired_token_waits_for_a_new_one(client: KimVoiceClient, sandbox: SandboxServer,
                                                 client_clock, sandbox_clock) -> None:
    sandbox.sandbox.knobs.token_lifetime = 60
    await client.health_check()
    client_clock.advance(120)
    sandbox_clock.advance(120)
    await client.health_check()
    assert sandbox.sandbox.statuses["HealthCheck", 401] == 0
    assert sandbox.sandbox.requests["LogOn"] == 2


async def test_401_then_refresh_then_success(client: KimVoiceClient, sandbox: SandboxServer, sandbox_clock) -> None:
    await client.health_check()
    sandbox_clock.advance(3 * 24 * 3600)  # the server sees the token expired; the client does not

    holders = await client.get_key_holders(123456, "2580")

    assert holders.key_holders[0].name == "Jane Agent"
    assert sandbox.sandbox.statuses["GetKeyHolders", 401] == 1
    assert sandbox.sandbox.statuses["GetKeyHolders", 200] == 1
    assert sandbox.sandbox.requests["LogOn"] == 2


async def test_revoked_tokens_are_replaced_once(client: KimVoiceClient, sandbox: SandboxServer) -> None:
    await client.health_check()
    sandbox.sandbox.revoke_tokens()
    await client.health_check()
    assert sandbox.sandbox.statuses["HealthCheck", 401] == 1
    assert sandbox.sandbox.requests["LogOn"] == 2


async def test_concurrent_first_calls_share_one_log_on(client: KimVoiceClient, sandbox: SandboxServer) -> None:
    sandbox.sandbox.knobs.latency = 0.05  # every first call finds no token while the log-on runs
    results = await asyncio.gather(*(client.health_check() for _ in range(25)))
    assert len(results) == 25
    assert sandbox.sandbox.requests["LogOn"] == 1


async def test_bad_credentials_are_an_authentication_error(sandbox: SandboxServer) -> None:
    async with KimVoiceClient(sandbox.url, SANDBOX_CLIENT_ID, "wrong", timeout=2) as bad:
        with pytest.raises(AuthenticationError, match="IVR_KIMVOICE_CLIENT_ID"):
            await bad.health_check()
    assert sandbox.sandbox.statuses["LogOn", 401] == 1
    assert sandbox.sandbox.requests["HealthCheck"] == 0


# -- retries and deadlines ----------------------------------------------------------------


async def test_retries_on_503_then_succeeds(client: KimVoiceClient, sandbox: SandboxServer) -> None:
    await client.log_on()
    sandbox.sandbox.knobs.fail_next = 2
    holders = await client.get_key_holders(123456, "2580")
    assert holders.key_holders[0].key_number == 123456
    assert sandbox.sandbox.statuses["GetKeyHolders", 503] == 2
    assert sandbox.sandbox.statuses["GetKeyHolders", 200] == 1


async def test_gives_up_after_three_attempts(client: KimVoiceClient, sandbox: SandboxServer) -> None:
    await client.log_on()
    sandbox.sandbox.knobs.fail_next = 10
    with pytest.raises(UnavailableError):
        await client.health_check()
    assert sandbox.sandbox.requests["HealthCheck"] == 3


async def test_no_retry_on_4xx(client: KimVoiceClient, sandbox: SandboxServer) -> None:
    with pytest.raises(ApiError):
        await client.get_key_holders(123456, "0000")
    with pytest.raises(ApiError):
        await client.get_cbs_code(90210, "4321", 123456, 5001)
    assert sandbox.sandbox.requests["GetKeyHolders"] == 1
    assert sandbox.sandbox.requests["GetCbsCode"] == 1


async def test_deadline_respected_under_added_latency(client: KimVoiceClient, sandbox: SandboxServer) -> None:
    await client.log_on()
    sandbox.sandbox.knobs.latency = 5.0
    started = time.monotonic()
    with pytest.raises(DeadlineExceededError, match=r"within 0\.3 s"):
        await client.health_check(timeout=0.3)
    assert time.monotonic() - started < 2.0, "the client waited for the slow answer"


async def test_default_deadline_covers_the_log_on(sandbox: SandboxServer) -> None:
    sandbox.sandbox.knobs.latency = 5.0
    async with KimVoiceClient(sandbox.url, SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, timeout=0.3) as slow:
        with pytest.raises(DeadlineExceededError):
            await slow.identify_key_holder(123456)


async def test_connection_refused_is_unavailable() -> None:
    async with SandboxServer() as server:
        url = server.url
    async with KimVoiceClient(url, SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, timeout=2, backoff=0.01) as gone:
        with pytest.raises(UnavailableError, match="cannot connect"):
            await gone.health_check()


async def _until(condition, timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.001)
