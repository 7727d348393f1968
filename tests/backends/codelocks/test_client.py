"""The Codelocks client against the sandbox on loopback: the NetCode and durations calls, and
what each refusal or failure becomes."""

from __future__ import annotations

import httpx
import pytest

from ivr.backends.codelocks import CodelocksClient
from ivr.backends.codelocks.sandbox import SANDBOX_API_KEY, CodelocksSandboxServer, sandbox_netcode
from ivr.errors import (
    NetCodeKeyRefusedError,
    NetCodeRejectedError,
    NetCodeUnavailableError,
    QuotaExhaustedError,
    SettingsError,
)

LOCK = {"lock_id": "202011161623", "model": "KL1060C2", "identifier": "451254"}
START = "2020-10-01 16:00"


async def _netcode(client: CodelocksClient, **changes: object) -> str:
    params: dict[str, object] = {**LOCK, "start": START, "duration": 4, **changes}
    lock_id = str(params.pop("lock_id"))
    answer = await client.netcode(lock_id, **params)  # type: ignore[arg-type]
    return answer.netcode


async def test_a_netcode_is_the_one_for_its_lock_start_and_duration(
    client: CodelocksClient, codelocks: CodelocksSandboxServer,
) -> None:
    answer = await client.netcode("202011161623", model="KL1060C2", identifier="451254", start=START, duration=4)
    assert answer.netcode == sandbox_netcode("202011161623", "KL1060C2", "451254", START, 4)
    assert len(answer.netcode) == 7
    assert (answer.duration_hours, answer.duration_days) == (5, 0)
    assert answer.netcode not in repr(answer)
    assert codelocks.sandbox.requests["GET /n/1/netcode/{id}"] == 1


@pytest.mark.parametrize("spelling", ["ActualNetcode", "ActualNetCode"])
async def test_either_spelling_of_the_netcode_field_is_read(
    client: CodelocksClient, codelocks: CodelocksSandboxServer, spelling: str,
) -> None:
    codelocks.sandbox.knobs.netcode_field = spelling  # type: ignore[assignment]
    assert await _netcode(client) == sandbox_netcode("202011161623", "KL1060C2", "451254", START, 4)


async def test_the_durations_of_a_model(client: CodelocksClient, codelocks: CodelocksSandboxServer) -> None:
    rows = await client.durations("KL1060G3")
    assert [(row.duration_id, row.duration_hours, row.duration_days) for row in rows][:2] == [(0, 1, 0), (1, 2, 0)]
    assert len(rows) == 12
    assert codelocks.sandbox.utility_calls and not codelocks.sandbox.netcode_calls


@pytest.mark.parametrize("status", [403, 429])
async def test_a_used_up_quota_is_quota_exhausted(
    client: CodelocksClient, codelocks: CodelocksSandboxServer, status: int,
) -> None:
    codelocks.sandbox.knobs.netcode_remaining = 1
    codelocks.sandbox.knobs.quota_status = status  # type: ignore[assignment]
    await _netcode(client)
    with pytest.raises(QuotaExhaustedError):
        await _netcode(client)


async def test_a_wrong_api_key_is_a_settings_error_naming_the_setting(codelocks: CodelocksSandboxServer) -> None:
    async with CodelocksClient(codelocks.url, "not-the-key-at-all", timeout=3.0) as client:
        with pytest.raises(NetCodeKeyRefusedError) as caught:
            await _netcode(client)
    assert isinstance(caught.value, SettingsError)
    assert caught.value.status == 403
    assert "IVR_CODELOCKS_API_KEY" in str(caught.value)
    assert "not-the-key-at-all" not in str(caught.value)


@pytest.mark.parametrize(("status", "said"), [(502, "Tertiary endpoint error"), (500, "Internal server error")])
async def test_a_server_error_is_unavailable(
    client: CodelocksClient, codelocks: CodelocksSandboxServer, status: int, said: str,
) -> None:
    codelocks.sandbox.knobs.fail_next = [status]
    with pytest.raises(NetCodeUnavailableError, match=f"HTTP {status}: {said}"):
        await _netcode(client)


@pytest.mark.parametrize(("changes", "status"), [
    ({"identifier": "999999"}, 400),  # not this lock's identifier
    ({"start": "2020-10-01 16:30"}, 400),  # not on the hour
    ({"duration": 12, "start": "2020-10-01 16:00"}, 400),  # a day NetCode not at midnight
])
async def test_invalid_data_is_rejected_with_its_status(
    client: CodelocksClient, changes: dict[str, object], status: int,
) -> None:
    with pytest.raises(NetCodeRejectedError) as caught:
        await _netcode(client, **changes)
    assert (caught.value.status, caught.value.message) == (status, "Invalid data supplied")


async def test_a_slow_answer_past_the_call_deadline_is_unavailable(
    client: CodelocksClient, codelocks: CodelocksSandboxServer,
) -> None:
    codelocks.sandbox.knobs.latency = 5.0
    with pytest.raises(NetCodeUnavailableError, match=r"no answer within 0\.2 s"):
        await _netcode(client, timeout=0.2)


async def test_a_server_that_drops_connections_is_unavailable(
    client: CodelocksClient, codelocks: CodelocksSandboxServer,
) -> None:
    codelocks.sandbox.knobs.down = True
    with pytest.raises(NetCodeUnavailableError):
        await _netcode(client)


async def test_nothing_listening_is_unavailable() -> None:
    async with CodelocksClient("http://127.0.0.1:9", SANDBOX_API_KEY, timeout=1.0) as client:
        with pytest.raises(NetCodeUnavailableError, match="cannot connect"):
            await _netcode(client)


@pytest.mark.parametrize(("status", "body", "error"), [
    (200, b"<html>", NetCodeUnavailableError),
    (200, b'{"ActualNetcode": "12a4567"}', NetCodeUnavailableError),
    (200, b'{"Resultstatus": "OK"}', NetCodeUnavailableError),
    (200, b'{"ActualNetcode": "ERROR"}', NetCodeRejectedError),
    (404, b'{"message": "Missing required parameter"}', NetCodeRejectedError),
    (422, b'{"message": "Generate netcode failed with ERROR status"}', NetCodeRejectedError),
    (429, b'{"message": "Too Many Requests"}', NetCodeUnavailableError),
])
async def test_answers_that_are_not_a_netcode(status: int, body: bytes, error: type[Exception]) -> None:
    """One function (the client's reading of an answer), so a mock transport stands in."""
    answer = httpx.MockTransport(lambda _: httpx.Response(status, stream=httpx.ByteStream(body)))
    async with CodelocksClient("https://codelocks.invalid", SANDBOX_API_KEY, transport=answer) as client:
        with pytest.raises(error) as caught:
            await _netcode(client)
    assert "12a4567" not in str(caught.value)


def test_settings_are_checked() -> None:
    with pytest.raises(SettingsError, match="IVR_CODELOCKS_URL"):
        CodelocksClient("api-connect.codelocks.io", SANDBOX_API_KEY)
    with pytest.raises(SettingsError, match="IVR_CODELOCKS_API_KEY"):
        CodelocksClient("https://api-connect.codelocks.io", "")
