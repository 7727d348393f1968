"""The Kazoo side of the wire: callflow JSON built as Kazoo reads it, `Digits` read as Kazoo sends them."""

from __future__ import annotations

import pytest

from ivr.transports.pivot import COLLECTION, INVALID_ENTRY, callflow, digits_of
from ivr.transports.pivot import _kazoo as kazoo


def test_modules_chain_through_the_wildcard_child() -> None:
    flow = callflow([kazoo.play("http://x/a.wav"), kazoo.collect_dtmf(4, 6000), kazoo.pivot("http://x/p")])
    assert flow["module"] == "play"
    second = flow["children"]["_"]
    assert second["module"] == "collect_dtmf"
    assert second["data"] == {"max_digits": 4, "timeout": 6000, "interdigit_timeout": 6000, "terminator": "#",
                              "collection_name": COLLECTION}
    assert second["children"]["_"] == {"module": "pivot", "children": {},
                                       "data": {"voice_url": "http://x/p", "req_format": "kazoo", "method": "get"}}


def test_an_empty_callflow_is_a_bug_not_an_answer() -> None:
    with pytest.raises(ValueError):
        callflow([])


def test_a_plain_play_is_not_cut_short_and_a_question_prompt_is() -> None:
    assert kazoo.play("u")["data"]["terminators"] == []
    assert kazoo.play("u", "12")["data"]["terminators"] == ["1", "2"]
    assert "terminators" not in kazoo.play_interruptible("u")["data"]  # Kazoo's default: any key


def test_a_transfer_carries_the_variables_then_branches() -> None:
    assert kazoo.set_variables({"IVR_KEY_NUMBER": "****56"}) == {"module": "set_variables", "data": {
        "custom_application_vars": {"IVR_KEY_NUMBER": "****56"}, "export": True}}
    assert kazoo.transfer("abc") == {"module": "callflow", "data": {"id": "abc"}}


@pytest.mark.parametrize(("params", "expected"), [
    ({}, None),
    ({f"Digits[{COLLECTION}]": "123456"}, "123456"),
    ({f"Digits[{COLLECTION}]": ""}, ""),  # the collection timed out
    ({f"Digits[{COLLECTION}]": "12#"}, "12"),
    ({f"Digits[{COLLECTION}]": "*0"}, "*0"),
    ({"Digits": {COLLECTION: "42", "default": "9"}}, "42"),  # req_body_format json
    ({"Digits": "7"}, "7"),  # the old plain string
    ({"Digits[default]": "5"}, None),  # stray keys, not an answer to our question
    ({f"Digits[{COLLECTION}]": "12a4"}, INVALID_ENTRY),
    ({f"Digits[{COLLECTION}]": "1" * 10_000}, INVALID_ENTRY),
    ({"Digits": {COLLECTION: ["1"]}}, INVALID_ENTRY),
])
def test_digits(params: dict[str, object], expected: str | None) -> None:
    assert digits_of(params) == expected


def test_custom_application_vars_flattened_or_nested() -> None:
    assert kazoo.custom_vars({"Custom-Application-Vars[job]": "j1", "Call-ID": "c"}) == {"job": "j1"}
    assert kazoo.custom_vars({"Custom-Application-Vars": {"job": "j2"}}) == {"job": "j2"}
