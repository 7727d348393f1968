"""A caller may hang up at any moment: the flow stops at once and calls nothing more."""

from __future__ import annotations

import pytest
from support.line import Line, MakeLine, ReactingCaller

from ivr.flow.records import Outcome

HAPPY = "123456#2580#19"

# (where the caller hangs up, the backend requests the call may have made by then)
STEPS = [
    ("welcome", ["HealthCheck"]),
    ("enter-key-number", ["HealthCheck"]),
    ("enter-pin", ["HealthCheck"]),
    ("choose-code-type", ["HealthCheck", "GetKeyHolders"]),
    ("your-update-code-is", ["HealthCheck", "GetKeyHolders", "ValidateKeyHolder", "GetUpdateCode"]),
    ("digits", ["HealthCheck", "GetKeyHolders", "ValidateKeyHolder", "GetUpdateCode"]),
    ("tts", ["HealthCheck", "GetKeyHolders", "ValidateKeyHolder", "GetUpdateCode"]),
    ("after-code-menu", ["HealthCheck", "GetKeyHolders", "ValidateKeyHolder", "GetUpdateCode"]),
]


@pytest.mark.parametrize(("during", "backend"), STEPS, ids=[s for s, _ in STEPS])
async def test_hang_up_during(line: Line, during: str, backend: list[str]) -> None:
    before = line.backend_requests()
    call = await line.call(HAPPY, hangup_on=during)

    assert call.heard.hung_up_by == "caller"
    assert call.record.outcome is Outcome.CALLER_HANGUP
    assert [b.method for b in call.record.backend] == backend
    assert sum(line.sandbox.requests.values()) - line.requests("LogOn") == len(backend)
    assert line.backend_requests() - before == len(backend)  # nothing after the hang-up
    if (agi := call.agi_result) is not None:
        assert agi.close_delay is not None and agi.close_delay < 1.0
    if (ari := call.ari_result) is not None:
        assert ari.ended_by == "caller"
        assert ari.requests_after_end == 0  # and nothing more asked of Asterisk


async def test_hang_up_while_typing(line: Line) -> None:
    call = await line.call("1234!")
    assert call.record.outcome is Outcome.CALLER_HANGUP
    assert call.record.detail == "hung up during enter-key-number"
    assert [b.method for b in call.record.backend] == ["HealthCheck"]
    assert line.requests("GetKeyHolders") == 0
    if (ari := call.ari_result) is not None:
        assert ari.requests_after_end == 0


async def test_hang_up_during_goodbye_keeps_the_outcome(line: Line) -> None:
    call = await line.call(HAPPY, hangup_on="goodbye")
    assert call.record.outcome is Outcome.UPDATE_CODE_READ
    assert call.heard.hung_up_by == "caller"


async def test_hang_up_during_please_wait_cancels_the_request(make_line: MakeLine) -> None:
    async with make_line(please_wait_after=0.05) as line:
        def slow_after_sign_in() -> None:
            line.sandbox.knobs.latency = 1.0

        caller = ReactingCaller(HAPPY, "choose-code-type", slow_after_sign_in, hangup_on="please-wait")
        call = await line.call(caller=caller)
    assert call.record.outcome is Outcome.CALLER_HANGUP
    assert call.record.backend[-1].method == "ValidateKeyHolder"
    assert call.record.backend[-1].result == "ChannelHangupError"  # and the request was dropped
    assert call.record.backend[-1].ms < 800
