"""A caller may hang up at any moment: the flow stops at once and calls nothing more."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from support.line import CATALOG, Line, MakeLine, ReactingCaller, running_line

from ivr.records import Outcome
from ivr.sim import SoundLibrary, run_classic_agi
from ivr.store import SqliteStore
from ivr.tts import TtsCache

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

ONE_PIVOT_ANSWER = {"welcome": "enter-key-number", "your-update-code-is": "after-code-menu",
                    "digits": "after-code-menu", "tts": "after-code-menu"}
"""Steps whose sounds go to Kazoo in one answer with a later step's question: a hang-up during
either is the same to the service over Pivot (no next request), so only the question is waited out."""


@pytest.mark.parametrize(("during", "backend"), STEPS, ids=[s for s, _ in STEPS])
async def test_hang_up_during(line: Line, during: str, backend: list[str]) -> None:
    if line.transport == "pivot" and during in ONE_PIVOT_ANSWER:
        pytest.skip(f"over Pivot {during} is in one answer with {ONE_PIVOT_ANSWER[during]}: the same hang-up")
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
    if line.transport == "pivot":
        pytest.skip("over Pivot keys typed before a hang-up never reach us: as hang_up_during[pivot-enter-key-number]")
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


async def test_a_hang_up_while_kimvoice_thinks_is_noticed_at_once(make_line: MakeLine) -> None:
    """Nothing is being played: over FastAGI only Asterisk's HANGUP line says the caller left,
    over ARI the channel's events. The request is dropped then, and no code is asked for."""
    latency = 1.5  # under the line's KimVoice deadline (2 s), and no please-wait meanwhile
    async with make_line(please_wait_after=10) as line:
        def slow_validation() -> None:
            line.sandbox.knobs.latency = latency

        caller = ReactingCaller(HAPPY, "choose-code-type", slow_validation,
                                hangup_on="choose-code-type", hangup_delay=0.1)  # once "1" is typed
        call = await line.call(caller=caller)

    assert call.heard.hung_up_by == "caller"
    assert call.prompts[-1] == "choose-code-type"
    assert call.record.outcome is Outcome.CALLER_HANGUP
    assert call.record.detail == "hung up during validate-key-holder"
    assert line.requests("GetUpdateCode") == 0  # no code issued for no one
    last = call.record.backend[-1]
    assert (last.method, last.result) == ("ValidateKeyHolder", "ChannelHangupError")
    assert last.ms < latency * 1000 / 2  # at the hang-up, not when KimVoice answered
    if (agi := call.agi_result) is not None:
        assert agi.close_delay is not None and agi.close_delay < 1.0
    if (ari := call.ari_result) is not None:
        assert ari.ended_by == "caller" and ari.requests_after_end == 0


async def test_a_hang_up_while_kimvoice_thinks_over_classic_agi(tmp_path: Path) -> None:
    """Classic AGI has no HANGUP line: Asterisk sends the program SIGHUP, and that is enough."""
    latency = 1.5
    async with running_line(tmp_path / "line") as line:  # for its sandbox
        def slow_validation() -> None:
            line.sandbox.knobs.latency = latency

        env = {**os.environ, "IVR_KIMVOICE_URL": str(line.settings.kimvoice_url),
               "IVR_DATA_DIR": str(tmp_path / "classic"), "IVR_PLEASE_WAIT_AFTER": "10"}
        caller = ReactingCaller(HAPPY, "choose-code-type", slow_validation,
                                hangup_on="choose-code-type", hangup_delay=0.1)
        sounds = SoundLibrary(CATALOG, TtsCache(tmp_path / "classic" / "tts"))
        result = await run_classic_agi([sys.executable, "-m", "ivr", "agi"], "keybox", caller=caller,
                                       sounds=sounds, env=env)
        assert line.requests("GetUpdateCode") == 0

    assert result.returncode == 0 and result.closed_by_service
    store = await SqliteStore.open(tmp_path / "classic" / "calls.db")
    try:
        record = await store.get(result.unique_id)
    finally:
        await store.close()
    assert record is not None
    assert record.outcome is Outcome.CALLER_HANGUP
    last = record.backend[-1]
    assert (last.method, last.result) == ("ValidateKeyHolder", "ChannelHangupError")
    assert last.ms < latency * 1000 / 2
