"""The events WebSocket drops mid-call: the transport reconnects and the call goes on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from structlog.testing import capture_logs
from support.line import ReactingCaller, today

from ivr.backends.kimvoice.sandbox import update_code_for
from ivr.records import Outcome

if TYPE_CHECKING:
    from support.line import MakeLine as MakeAriLine

HAPPY = "123456#2580#19"


async def test_the_socket_drops_during_a_prompt_and_the_call_completes(make_ari_line: MakeAriLine) -> None:
    async with make_ari_line() as line:
        # The drop comes as the caller hears the intro: its PlaybackFinished is lost, so the
        # transport learns the prompt has ended only by asking, once it is connected again.
        caller = ReactingCaller(HAPPY, "your-update-code-is", lambda: line.ari.drop("keybox"))
        with capture_logs() as logs:
            call = await line.call(caller=caller)
        assert line.service.ari is not None
        connections = line.service.ari.connections

    assert call.ari_result is not None
    assert call.ari_result.lost_events >= 1
    assert connections == 2
    assert "ari.playback_ended_unseen" in [entry["event"] for entry in logs]
    assert call.prompts[-4:] == ["choose-code-type", "your-update-code-is", "after-code-menu", "goodbye"]
    assert call.heard.said_digits == [update_code_for(123456, 5001, 5001, 1, today())]
    assert call.record.outcome is Outcome.UPDATE_CODE_READ
    assert call.ari_result.ended_by == "service"


async def test_keys_pressed_while_the_socket_is_down_are_lost_and_the_question_comes_again(
    make_ari_line: MakeAriLine,
) -> None:
    async with make_ari_line() as line:
        # The caller types the PIN right after its prompt, while the transport is reconnecting:
        # Asterisk keeps no events, so the PIN never arrives; the entry times out and is asked again.
        caller = ReactingCaller("123456#" "2580#" "2580#" "19", "enter-pin", lambda: line.ari.drop("keybox"))
        call = await line.call(caller=caller)

    assert call.prompts[:5] == ["welcome", "enter-key-number", "enter-pin", "invalid-entry", "enter-pin"]
    assert call.record.outcome is Outcome.UPDATE_CODE_READ


async def test_a_refusing_asterisk_is_retried_until_it_takes_the_application_again(
    make_ari_line: MakeAriLine,
) -> None:
    async with make_ari_line() as line:
        app = line.service.ari
        assert app is not None
        line.ari.refuse_connections = True
        await line.ari.disconnect("keybox")
        await line.ari.wait_attempts(3, timeout=5)  # refused twice, and trying again
        assert not line.ari.connected("keybox")
        line.ari.refuse_connections = False
        await line.ari.wait_connected("keybox", timeout=5)
        call = await line.call(HAPPY)
    assert call.record.outcome is Outcome.UPDATE_CODE_READ
