"""The wire models read what a .NET service may send (unit tests of the model layer)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ivr.backends.kimvoice import CbsCode, HealthCheck, KeyHolders, OperationalMode, UpdateCode


def test_pascal_case_keys_and_unknown_fields() -> None:
    body = """{"KeyHolders": [{"KeyNumber": 123456, "PrimaryMember": 5001, "Name": "Jane Agent",
      "Members": [{"MemberNumber": 5001, "Name": "Board", "Extra": 1}], "Pods": [1],
      "CbsInstructions": "Press up.", "Office": {"Id": 3}}], "TraceId": "x"}"""
    (holder,) = KeyHolders.model_validate_json(body).key_holders
    assert (holder.key_number, holder.primary_member, holder.members[0].member_number) == (123456, 5001, 5001)
    assert holder.cbs_instructions == "Press up."


def test_models_write_camel_case() -> None:
    health = HealthCheck(operational_mode=OperationalMode.DISASTER_RECOVERY, message="m")
    assert health.to_wire() == {"operationalMode": "DisasterRecovery", "message": "m"}


def test_a_code_keeps_its_leading_zeros_and_accepts_a_number() -> None:
    assert UpdateCode.model_validate_json('{"updateCode": "0047"}').update_code == "0047"
    assert CbsCode.model_validate_json('{"cbsCode": 829140}').cbs_code == "829140"


@pytest.mark.parametrize("code", ['"12-34"', '""', '"abc"', "null", "true"])
def test_a_code_that_cannot_be_read_digit_by_digit_is_refused(code: str) -> None:
    with pytest.raises(ValidationError):
        UpdateCode.model_validate_json(f'{{"updateCode": {code}}}')


@pytest.mark.parametrize("pods", ["[]", "[3]", "[0]"])
def test_pods_must_be_1_or_2(pods: str) -> None:
    body = ('{"keyHolders": [{"keyNumber": 123456, "primaryMember": 1, "name": "n",'
            f' "members": [{{"memberNumber": 1, "name": "m"}}], "pods": {pods}}}]}}')
    with pytest.raises(ValidationError):
        KeyHolders.model_validate_json(body)
