"""GET DATA and WAIT FOR DIGIT: the scripted caller's keys, as Asterisk reports them."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import pytest

from ivr.catalog import PromptCatalog
from ivr.sim import DEAD_CHANNEL, InputRequest, InteractiveCaller, ScriptedCaller

if TYPE_CHECKING:
    from conftest import FastAgi

KEY = "GET DATA keybox/enter-key-number 6000 10"
PIN = "GET DATA keybox/enter-pin 6000 4"
MENU = "GET DATA keybox/choose-code-type 6000 1"


@pytest.mark.parametrize(
    ("keys", "commands", "replies", "typed"),
    [
        ("123456#", [KEY], ["200 result=123456"], ["123456#"]),
        ("1234", [PIN], ["200 result=1234"], ["1234"]),
        ("123456", [PIN], ["200 result=1234"], ["1234"]),
        ("12_34", [PIN, PIN], ["200 result=12 (timeout)", "200 result=34 (timeout)"], ["12", "34"]),
        ("#", [PIN], ["200 result="], ["#"]),
        ("", [PIN], ["200 result= (timeout)"], [""]),
        ("_1", [MENU, MENU], ["200 result= (timeout)", "200 result=1"], ["", "1"]),
        ("12", [PIN, MENU], ["200 result=12 (timeout)", "200 result= (timeout)"], ["12", ""]),
        # A `#` right after a full entry is typed along with it, not kept for the next question.
        ("1234#9", [PIN, MENU], ["200 result=1234", "200 result=9"], ["1234#", "9"]),
        ("*0", [KEY], ["200 result=*0 (timeout)"], ["*0"]),
        ("0123456789 0000#", [KEY, PIN], ["200 result=0123456789", "200 result=0000"], ["0123456789", "0000#"]),
    ],
)
async def test_get_data_replies(
    fastagi: FastAgi, keys: str, commands: list[str], replies: list[str], typed: list[str]
) -> None:
    call = await fastagi.dial(ScriptedCaller(keys), answered=True)

    assert [await call.service.send(command) for command in commands] == replies

    transcript = (await call.hang_up_and_result()).transcript
    assert [e.value for e in transcript.events if e.kind in ("pressed", "silence")] == typed


async def test_get_data_prompt_is_heard_and_missing_prompt_answers_minus_one(fastagi: FastAgi) -> None:
    caller = ScriptedCaller("1#")
    call = await fastagi.dial(caller, answered=True)

    assert await call.service.send("GET DATA keybox/no-such-prompt 6000 4") == "200 result=-1"
    assert caller.remaining == "1#"  # nobody asked the caller
    assert await call.service.send(PIN) == "200 result=1"
    assert await call.service.send('GET DATA "" 3000 2') == "200 result= (timeout)"

    transcript = (await call.hang_up_and_result()).transcript
    assert transcript.missing == ["keybox/no-such-prompt"]
    assert transcript.prompts == ["enter-pin"]


async def test_get_data_defaults_and_max_zero(fastagi: FastAgi) -> None:
    call = await fastagi.dial(ScriptedCaller("12345#"), answered=True)

    assert await call.service.send("GET DATA keybox/enter-pin 5000 0") == "200 result=-1"
    assert await call.service.send("GET DATA keybox/enter-pin") == "200 result=12345"
    await call.hang_up_and_result()


async def test_wait_for_digit(fastagi: FastAgi) -> None:
    call = await fastagi.dial(ScriptedCaller("5_#*12"), answered=True)
    service = call.service

    assert await service.send("WAIT FOR DIGIT 3000") == "200 result=53"
    assert await service.send("WAIT FOR DIGIT 3000") == "200 result=0"
    assert await service.send("WAIT FOR DIGIT 3000") == "200 result=35"
    assert await service.send("WAIT FOR DIGIT 3000") == "200 result=42"
    assert await service.send(MENU) == "200 result=1"
    assert await service.send("WAIT FOR DIGIT 3000") == "200 result=50"
    assert await service.send("WAIT FOR DIGIT 3000") == "200 result=0"  # the buffer ran out

    transcript = (await call.hang_up_and_result()).transcript
    assert [e.value for e in transcript.events if e.kind == "pressed"] == ["5", "#", "*", "1", "2"]


async def test_bang_hangs_up_at_that_request(fastagi: FastAgi) -> None:
    call = await fastagi.dial(ScriptedCaller("123456#!"), answered=True)
    service = call.service

    assert await service.send(KEY) == "200 result=123456"
    assert await service.send(PIN) == "200 result=-1"
    assert await service.line() == "HANGUP"
    assert await service.send("CHANNEL STATUS") == DEAD_CHANNEL
    assert await service.send(PIN) == DEAD_CHANNEL

    result = await call.hang_up_and_result()
    assert result.transcript.hung_up_by == "caller"
    assert result.closed_by_service


async def test_wait_for_digit_hang_up(fastagi: FastAgi) -> None:
    call = await fastagi.dial(ScriptedCaller("!"), answered=True)

    assert await call.service.send("WAIT FOR DIGIT 3000") == "200 result=-1"
    assert await call.service.line() == "HANGUP"
    assert (await call.hang_up_and_result()).transcript.hung_up_by == "caller"


async def test_silence_on_an_endless_wait_for_digit_is_a_hang_up(fastagi: FastAgi) -> None:
    call = await fastagi.dial(ScriptedCaller(), answered=True)

    assert await call.service.send("WAIT FOR DIGIT -1") == "200 result=-1"
    assert await call.service.line() == "HANGUP"
    assert (await call.hang_up_and_result()).transcript.hung_up_by == "caller"


async def test_scripted_caller_refuses_unknown_keys() -> None:
    with pytest.raises(ValueError, match="'x'"):
        ScriptedCaller("12x4")


async def test_scripted_caller_hangup_on_targets() -> None:
    assert ScriptedCaller(hangup_on="welcome").hangup_on("keybox/welcome")
    assert not ScriptedCaller(hangup_on="welcome").hangup_on("keybox/goodbye")
    assert ScriptedCaller(hangup_on="digits").hangup_on("digits/4")
    assert ScriptedCaller(hangup_on="tts").hangup_on("tts/abc")
    assert not ScriptedCaller().hangup_on("keybox/welcome")


async def test_think_time_comes_before_each_answer() -> None:
    waits: list[float] = []

    def think() -> float:
        waits.append(0.01)
        return 0.01

    caller = ScriptedCaller("1", think=think)
    assert await caller.keys_for(InputRequest("get_data", "keybox/enter-pin", 4, 6000)) == "1"
    assert await caller.keys_for(InputRequest("wait_for_digit", None, 1, 3000)) == ""
    assert waits == [0.01, 0.01]


async def test_interactive_caller_reads_lines_and_shows_events(fastagi: FastAgi, catalog: PromptCatalog) -> None:
    output = io.StringIO()
    caller = InteractiveCaller(catalog, input_stream=io.StringIO("12 34#\n\n"), output=output)
    call = await fastagi.dial(caller, answered=True)
    service = call.service

    assert await service.send(KEY) == "200 result=1234"
    assert await service.send("SET VARIABLE CHANNEL(language) fr") == "200 result=1"
    assert await service.send(PIN) == "200 result= (timeout)"
    assert await service.send(PIN) == "200 result=-1"  # end of input: the caller hangs up
    assert await service.line() == "HANGUP"

    await call.hang_up_and_result()
    shown = output.getvalue()
    assert '[prompt] enter-key-number  "Please enter the number printed on your key' in shown
    assert "[pressed] 1234#" in shown
    assert f'[prompt] enter-pin  "{catalog.text("enter-pin", "fr")}"' in shown
    assert "[silence]" in shown
    assert "[hangup] caller" in shown
