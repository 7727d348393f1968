"""Parameters are checked against the seed's ranges before anything is sent."""

from __future__ import annotations

import pytest

from ivr.backends.kimvoice import KimVoiceClient
from ivr.backends.kimvoice.sandbox import SandboxServer
from ivr.errors import ApiError, InvalidParameterError

INT32_MAX = 2_147_483_647


@pytest.mark.parametrize("key_number", [9999, 0, -1, INT32_MAX + 1])
async def test_key_number_out_of_range_is_refused_before_sending(
    client: KimVoiceClient, sandbox: SandboxServer, key_number: int
) -> None:
    with pytest.raises(InvalidParameterError, match="key_number"):
        await client.get_key_holders(key_number, "2580")
    with pytest.raises(InvalidParameterError, match="key_number"):
        await client.identify_key_holder(key_number)
    assert sum(sandbox.sandbox.requests.values()) == 0


@pytest.mark.parametrize("key_number", [10000, INT32_MAX])
async def test_key_number_range_edges_are_sent(
    client: KimVoiceClient, sandbox: SandboxServer, key_number: int
) -> None:
    with pytest.raises(ApiError):  # sent, and refused by the service: not a seeded key
        await client.identify_key_holder(key_number)
    assert sandbox.sandbox.statuses["IdentifyKeyHolder", 404] == 1


@pytest.mark.parametrize("pod", [0, 3, -1])
async def test_pod_outside_1_and_2_is_refused(client: KimVoiceClient, sandbox: SandboxServer, pod: int) -> None:
    with pytest.raises(InvalidParameterError, match="pod_number"):
        await client.validate_key_holder(123456, 5001, pod, "Update")
    with pytest.raises(InvalidParameterError, match="pod_number"):
        await client.get_update_code(123456, 5001, 5001, pod)
    assert sum(sandbox.sandbox.requests.values()) == 0


@pytest.mark.parametrize("pod", [1, 2])
async def test_pods_1_and_2_are_sent(client: KimVoiceClient, sandbox: SandboxServer, pod: int) -> None:
    await client.validate_key_holder(234567, 5001, pod, "Update")
    assert sandbox.sandbox.statuses["ValidateKeyHolder", 200] == 1


@pytest.mark.parametrize("pin", ["123", "12345", "12a4", "", "١٢٣٤", "1234\n"])
async def test_malformed_pin_is_refused_and_not_echoed(
    client: KimVoiceClient, sandbox: SandboxServer, pin: str
) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        await client.get_key_holders(123456, pin)
    assert "pin" in str(caught.value)
    if pin.strip():
        assert pin.strip() not in str(caught.value)
    assert sum(sandbox.sandbox.requests.values()) == 0


async def test_pin_with_a_space_matches_the_seed_pattern_and_is_sent(
    client: KimVoiceClient, sandbox: SandboxServer
) -> None:
    # The seed's [RegularExpression(@"[0-9\s]{4,4}$")] admits white space; KimVoice decides.
    with pytest.raises(ApiError):
        await client.get_key_holders(123456, "1 34")
    assert sandbox.sandbox.statuses["GetKeyHolders", 404] == 1


@pytest.mark.parametrize(
    ("member", "ok"), [(0, False), (1, True), (INT32_MAX, True), (INT32_MAX + 1, False)]
)
async def test_member_number_edges(client: KimVoiceClient, sandbox: SandboxServer, member: int, ok: bool) -> None:
    if ok:
        with pytest.raises(ApiError):  # sent: the key has no such member
            await client.validate_key_holder(123456, member, 1, "Update")
    else:
        with pytest.raises(InvalidParameterError, match="member_number"):
            await client.validate_key_holder(123456, member, 1, "Update")
    assert sum(sandbox.sandbox.requests.values()) == (2 if ok else 0)  # LogOn and the call


@pytest.mark.parametrize("box", [0, INT32_MAX + 1])
async def test_box_number_out_of_range(client: KimVoiceClient, sandbox: SandboxServer, box: int) -> None:
    with pytest.raises(InvalidParameterError, match="box_number"):
        await client.get_cbs_code(box, "4321", 123456, 5001)
    assert sum(sandbox.sandbox.requests.values()) == 0


@pytest.mark.parametrize("shackle", ["432", "43210", "4a21"])
async def test_shackle_code_pattern(client: KimVoiceClient, sandbox: SandboxServer, shackle: str) -> None:
    with pytest.raises(InvalidParameterError, match="shackle_code"):
        await client.get_cbs_code(90210, shackle, 123456, 5001)
    assert sum(sandbox.sandbox.requests.values()) == 0


async def test_unknown_code_type_is_refused(client: KimVoiceClient, sandbox: SandboxServer) -> None:
    with pytest.raises(InvalidParameterError, match="code_type"):
        await client.validate_key_holder(123456, 5001, 1, "NetCode")
    assert sum(sandbox.sandbox.requests.values()) == 0


@pytest.mark.parametrize("code_type", ["Update", "update", 1, "1"])
async def test_code_type_spellings_the_service_accepts(
    client: KimVoiceClient, sandbox: SandboxServer, code_type: object
) -> None:
    validation = await client.validate_key_holder(123456, 5001, 1, code_type)  # type: ignore[arg-type]
    assert validation.code_type.value == "Update"
