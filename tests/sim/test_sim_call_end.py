"""How calls end: hang-ups on either side, transfers, services that never close, the bounds."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from ivr.sim import DEAD_CHANNEL, Event, ScriptedCaller, SoundLibrary, place_call
from ivr.tts import TtsCache

if TYPE_CHECKING:
    from conftest import FastAgi


async def test_caller_hangs_up_during_a_prompt(fastagi: FastAgi) -> None:
    call = await fastagi.dial(ScriptedCaller("1234#", hangup_on="welcome"), answered=True)
    service = call.service

    reply = await service.send('STREAM FILE keybox/welcome ""')
    assert reply.startswith("200 result=-1 endpos=")
    assert int(reply.rpartition("=")[2]) > 0
    assert await service.line() == "HANGUP"
    assert await service.send("CHANNEL STATUS") == DEAD_CHANNEL
    assert await service.send('STREAM FILE keybox/goodbye ""') == DEAD_CHANNEL
    # res_agi runs these on a dead channel too.
    assert await service.send("SET VARIABLE IVR_OUTCOME caller_hangup") == "200 result=1"
    assert await service.send("GET VARIABLE PLAYBACKSTATUS") == "200 result=1 (FAILED)"
    assert await service.send('VERBOSE "bye" 1') == "200 result=1"

    result = await call.hang_up_and_result()
    assert result.transcript.events[:2] == [Event("prompt", "welcome"), Event("hangup", "caller")]
    assert result.transcript.variables == {"IVR_OUTCOME": "caller_hangup"}
    assert result.closed_by_service
    assert result.close_delay is not None and 0 <= result.close_delay < 3


async def test_caller_hangs_up_during_a_get_data_prompt(fastagi: FastAgi) -> None:
    caller = ScriptedCaller("1234#", hangup_on="enter-pin")
    call = await fastagi.dial(caller, answered=True)

    assert await call.service.send("GET DATA keybox/enter-pin 6000 4") == "200 result=-1"
    assert await call.service.line() == "HANGUP"
    assert caller.remaining == "1234#"
    assert (await call.hang_up_and_result()).transcript.hung_up_by == "caller"


async def test_caller_hangs_up_while_digits_are_read_out(fastagi: FastAgi) -> None:
    call = await fastagi.dial(ScriptedCaller(hangup_on="digits"), answered=True)

    assert await call.service.send('SAY DIGITS 4719 ""') == "200 result=-1"
    assert await call.service.line() == "HANGUP"
    transcript = (await call.hang_up_and_result()).transcript
    assert transcript.said_digits == ["4719"]
    assert transcript.hung_up_by == "caller"


async def test_caller_hangs_up_during_a_tts_sound(fastagi: FastAgi, tts: TtsCache) -> None:
    name = await tts.render("Press 1 for Jane Agent", "en")
    call = await fastagi.dial(ScriptedCaller(hangup_on="tts"), answered=True)

    assert (await call.service.send('STREAM FILE keybox/welcome ""')).startswith("200 result=0 endpos=")
    assert (await call.service.send(f'STREAM FILE {name} ""')).startswith("200 result=-1 endpos=")
    assert await call.service.line() == "HANGUP"
    assert (await call.hang_up_and_result()).transcript.spoken == ["Press 1 for Jane Agent"]


async def test_service_hangup(fastagi: FastAgi) -> None:
    call = await fastagi.dial(answered=True)

    assert await call.service.send("HANGUP PJSIP/someone-else") == "200 result=-1"
    assert await call.service.send("HANGUP") == "200 result=1"
    assert await call.service.line() == "HANGUP"
    assert await call.service.send("HANGUP") == DEAD_CHANNEL

    result = await call.hang_up_and_result()
    assert result.transcript.hung_up_by == "service"
    assert result.transcript.transferred_to is None
    assert result.closed_by_service


async def test_transfer_is_closing_with_ivr_transfer_set(fastagi: FastAgi) -> None:
    call = await fastagi.dial(answered=True)

    assert await call.service.send('SET VARIABLE IVR_TRANSFER "Queue(keybox-agents)"') == "200 result=1"

    result = await call.hang_up_and_result()
    assert result.transcript.transferred_to == "Queue(keybox-agents)"
    assert result.transcript.hung_up_by is None
    assert result.transcript.events[-1] == Event("transfer", "Queue(keybox-agents)")
    assert (result.closed_by_service, result.close_delay) == (True, None)


async def test_closing_with_the_channel_up_and_no_transfer_is_a_service_hangup(fastagi: FastAgi) -> None:
    call = await fastagi.dial(answered=True)

    result = await call.hang_up_and_result()
    assert result.transcript.hung_up_by == "service"
    assert "no IVR_TRANSFER" in result.transcript.notes[-1]


async def test_ivr_transfer_does_not_count_after_a_hang_up(fastagi: FastAgi) -> None:
    call = await fastagi.dial(ScriptedCaller("!"), answered=True)

    assert await call.service.send("WAIT FOR DIGIT 1000") == "200 result=-1"
    assert await call.service.line() == "HANGUP"
    assert await call.service.send("SET VARIABLE IVR_TRANSFER operator") == "200 result=1"
    transcript = (await call.hang_up_and_result()).transcript
    assert (transcript.hung_up_by, transcript.transferred_to) == ("caller", None)


async def test_service_that_never_closes_is_given_up_on(fastagi: FastAgi) -> None:
    call = await fastagi.dial(ScriptedCaller("!"), answered=True, close_wait=0.2)

    assert await call.service.send("WAIT FOR DIGIT 1000") == "200 result=-1"
    result = await call.result()  # the service keeps the connection open

    assert not result.closed_by_service
    assert result.close_delay is None
    assert result.duration < 2
    assert "did not close the connection within 0.2 s" in result.transcript.notes[-1]
    assert await call.service.rest() == b"HANGUP\n"  # then the simulator closed its end


async def test_caller_gives_up_on_a_silent_service(fastagi: FastAgi) -> None:
    call = await fastagi.dial(answered=True, timeout=0.1)

    assert await call.service.line() == "HANGUP"  # between commands: no reply comes first
    assert await call.service.send("ANSWER") == DEAD_CHANNEL

    result = await call.hang_up_and_result()
    assert result.transcript.hung_up_by == "caller"
    assert "gave up" in result.transcript.notes[0]


async def test_caller_gives_up_while_thinking_past_the_call_timeout(fastagi: FastAgi) -> None:
    call = await fastagi.dial(ScriptedCaller("1", think=lambda: 5.0), answered=True, timeout=0.1)

    assert await call.service.send("GET DATA keybox/enter-pin 6000 4") == "200 result=-1"
    assert await call.service.line() == "HANGUP"
    assert (await call.hang_up_and_result()).transcript.hung_up_by == "caller"


async def test_command_cap(fastagi: FastAgi) -> None:
    call = await fastagi.dial(answered=True, max_commands=3)

    for _ in range(3):
        assert await call.service.send("NOOP") == "200 result=0"
    assert await call.service.send("ANSWER") == "HANGUP"
    assert await call.service.line() == DEAD_CHANNEL

    result = await call.hang_up_and_result()
    assert result.transcript.hung_up_by == "caller"
    assert "more than 3 commands" in result.transcript.notes[0]


async def test_turnarounds_exclude_the_callers_thinking(fastagi: FastAgi) -> None:
    turnarounds: list[float] = []
    call = await fastagi.dial(ScriptedCaller("12", think=lambda: 0.15), answered=True, turnarounds=turnarounds)

    assert await call.service.send("ANSWER") == "200 result=0"
    assert await call.service.send("GET DATA keybox/enter-pin 6000 4") == "200 result=12 (timeout)"
    assert await call.service.send("NOOP") == "200 result=0"

    result = await call.hang_up_and_result()
    assert len(turnarounds) == 2
    assert all(0 <= seconds < 0.15 for seconds in turnarounds)
    assert result.duration >= 0.15


async def test_unreachable_service_raises(sounds: SoundLibrary) -> None:
    with pytest.raises(OSError):
        await place_call("127.0.0.1:1", caller=ScriptedCaller(), sounds=sounds)


async def test_caller_hangs_up_between_commands_a_while_after_a_prompt(fastagi: FastAgi) -> None:
    """As while the service waits for a backend: the HANGUP line comes with no command pending."""
    call = await fastagi.dial(ScriptedCaller("1", hangup_on="choose-code-type", hangup_delay=0.05), answered=True)

    assert await call.service.send("GET DATA keybox/choose-code-type 6000 1") == "200 result=1"
    assert await call.service.line() == "HANGUP"  # nothing was sent meanwhile
    assert await call.service.send("CHANNEL STATUS") == DEAD_CHANNEL

    result = await call.hang_up_and_result()
    assert result.transcript.events[-2:] == [Event("pressed", "1"), Event("hangup", "caller")]
    assert result.transcript.notes == []  # a planned hang-up, not a caller giving up


async def test_a_planned_hang_up_during_a_question_ends_it(fastagi: FastAgi) -> None:
    caller = ScriptedCaller("1234#", hangup_on="welcome", hangup_delay=0.05, think=lambda: 5.0)
    call = await fastagi.dial(caller, answered=True)

    assert (await call.service.send('STREAM FILE keybox/welcome ""')).startswith("200 result=0 endpos=")
    assert await call.service.send("GET DATA keybox/enter-pin 6000 4") == "200 result=-1"
    assert await call.service.line() == "HANGUP"
    result = await call.hang_up_and_result()
    assert result.transcript.hung_up_by == "caller" and result.duration < 2


async def test_agisighup_no_means_no_hangup_line(fastagi: FastAgi) -> None:
    call = await fastagi.dial(ScriptedCaller(hangup_on="welcome"), answered=True, variables={"AGISIGHUP": "no"})

    assert (await call.service.send('STREAM FILE keybox/welcome ""')).startswith("200 result=-1 endpos=")
    assert await call.service.send("CHANNEL STATUS") == DEAD_CHANNEL  # no HANGUP line before it
    assert (await call.hang_up_and_result()).transcript.hung_up_by == "caller"
