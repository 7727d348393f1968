"""KimVoice forgets a validation when its token is renewed: the flow validates again and reads the code."""

from __future__ import annotations

from typing import Any

from support.line import Line, MakeLine, today

from ivr.backends.kimvoice.sandbox import cbs_code_for, update_code_for
from ivr.records import Outcome


def renew_tokens_after_the_next_validation(line: Line) -> None:
    """The sandbox answers the next ValidateKeyHolder, then revokes every token (a renewal)."""
    validate = line.sandbox.validate_key_holder

    def once(*args: Any) -> Any:
        answer = validate(*args)
        line.sandbox.revoke_tokens()
        line.sandbox.validate_key_holder = validate  # type: ignore[method-assign]
        return answer

    line.sandbox.validate_key_holder = once  # type: ignore[method-assign]


async def test_update_code_after_a_token_renewal(make_line: MakeLine) -> None:
    async with make_line() as line:
        renew_tokens_after_the_next_validation(line)
        call = await line.call("123456#2580#19")
    assert call.heard.said_digits == [update_code_for(123456, 5001, 5001, 1, today())]
    assert call.record.outcome is Outcome.UPDATE_CODE_READ
    assert [(b.method, b.result) for b in call.record.backend[2:]] == [
        ("ValidateKeyHolder", "ok"), ("GetUpdateCode", "ApiError 2004"),
        ("ValidateKeyHolder", "ok"), ("GetUpdateCode", "ok"),
    ]


async def test_cbs_code_after_a_token_renewal(make_line: MakeLine) -> None:
    async with make_line() as line:
        renew_tokens_after_the_next_validation(line)
        call = await line.call("123456#2580#2" "90210#4321" "9")
    assert call.heard.said_digits == [cbs_code_for(90210, 123456, 5001, today())]
    assert call.record.outcome is Outcome.CBS_CODE_READ
