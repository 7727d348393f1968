"""Each AGI command's reply, line for line as res_agi.c writes it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from ivr.sim import Event
from ivr.transports.agi import AgiEnvironment, ReplyParser
from ivr.tts import TtsCache

if TYPE_CHECKING:
    from conftest import FastAgi


async def test_answer_and_channel_status(fastagi: FastAgi) -> None:
    call = await fastagi.dial()
    service = call.service

    assert await service.send("CHANNEL STATUS") == "200 result=4"
    assert await service.send("ANSWER") == "200 result=0"
    assert await service.send("CHANNEL STATUS") == "200 result=6"
    assert await service.send("answer") == "200 result=0"  # verbs are case-insensitive

    result = await call.hang_up_and_result()
    assert result.transcript.events[0] == Event("answer")
    assert result.transcript.events.count(Event("answer")) == 1


async def test_answered_channel_starts_up(fastagi: FastAgi) -> None:
    call = await fastagi.dial(answered=True)

    assert await call.service.send("CHANNEL STATUS") == "200 result=6"
    assert await call.service.send("ANSWER") == "200 result=0"
    assert Event("answer") not in (await call.hang_up_and_result()).transcript.events


async def test_stream_file_of_a_prompt_and_of_a_missing_sound(fastagi: FastAgi) -> None:
    call = await fastagi.dial(answered=True)
    service = call.service

    played = await service.send('STREAM FILE keybox/welcome ""')
    assert played.startswith("200 result=0 endpos=")
    assert int(played.rpartition("=")[2]) > 0
    assert await service.send("GET VARIABLE PLAYBACKSTATUS") == "200 result=1 (SUCCESS)"
    assert await service.send('STREAM FILE keybox/nonexistent ""') == "200 result=-1 endpos=0"
    assert await service.send('STREAM FILE keybox/nonexistent "" 800') == "200 result=-1 endpos=800"
    assert (await service.send('STREAM FILE beep "#"')).startswith("200 result=0 endpos=")

    result = await call.hang_up_and_result()
    assert result.transcript.prompts == ["welcome"]
    assert result.transcript.missing == ["keybox/nonexistent", "keybox/nonexistent"]
    assert Event("sound", "beep") in result.transcript.events


async def test_sound_before_answer_is_noted(fastagi: FastAgi) -> None:
    call = await fastagi.dial()

    assert (await call.service.send('STREAM FILE keybox/welcome ""')).startswith("200 result=0")
    assert any("before ANSWER" in note for note in (await call.hang_up_and_result()).transcript.notes)


async def test_tts_sound_plays_its_text(fastagi: FastAgi, tts: TtsCache) -> None:
    name = await tts.render("Jane Agent", "en")
    call = await fastagi.dial(answered=True)

    assert (await call.service.send(f'STREAM FILE {name} ""')).startswith("200 result=0 endpos=")
    assert await call.service.send('STREAM FILE tts/0123456789abcdef01234567 ""') == "200 result=-1 endpos=0"

    result = await call.hang_up_and_result()
    assert result.transcript.spoken == ["Jane Agent"]
    assert result.transcript.missing == ["tts/0123456789abcdef01234567"]


async def test_say_digits(fastagi: FastAgi) -> None:
    call = await fastagi.dial(answered=True)

    assert await call.service.send('SAY DIGITS 04719283 ""') == "200 result=0"
    assert (await call.hang_up_and_result()).transcript.said_digits == ["04719283"]


async def test_variables_and_language(fastagi: FastAgi) -> None:
    call = await fastagi.dial(answered=True, variables={"IVR_JOB_ID": "job-42"})
    service = call.service

    assert await service.send("GET VARIABLE IVR_JOB_ID") == "200 result=1 (job-42)"
    assert await service.send("GET VARIABLE NOT_SET") == "200 result=0"
    assert await service.send('SET VARIABLE IVR_LAST_STEP "enter pin (2)"') == "200 result=1"
    assert await service.send("GET VARIABLE IVR_LAST_STEP") == "200 result=1 (enter pin (2))"
    assert await service.send("GET VARIABLE CHANNEL(language)") == "200 result=1 (en)"
    assert await service.send("GET VARIABLE CALLERID(num)") == "200 result=1 (+15555550100)"
    assert await service.send("GET VARIABLE CALLERID(name)") == "200 result=1 ()"
    assert await service.send("GET VARIABLE NO_SUCH_FUNCTION(x)") == "200 result=0"
    unique_id = AgiEnvironment.from_lines(service.environment).unique_id
    assert await service.send("GET VARIABLE UNIQUEID") == f"200 result=1 ({unique_id})"
    assert await service.send("SET VARIABLE CHANNEL(language) fr") == "200 result=1"
    assert await service.send("GET VARIABLE CHANNEL(language)") == "200 result=1 (fr)"
    assert (await service.send('STREAM FILE keybox/welcome ""')).startswith("200 result=0")
    assert await service.send("SET VARIABLE CHANNEL(language) de") == "200 result=1"
    assert await service.send('STREAM FILE keybox/welcome ""') == "200 result=-1 endpos=0"

    transcript = (await call.hang_up_and_result()).transcript
    assert transcript.variables == {"IVR_LAST_STEP": "enter pin (2)", "CHANNEL(language)": "de"}
    assert [e for e in transcript.events if e.kind in ("language", "prompt", "missing")] == [
        Event("language", "fr"),
        Event("prompt", "welcome"),
        Event("language", "de"),
        Event("missing", "keybox/welcome"),
    ]


async def test_verbose_exec_and_noop(fastagi: FastAgi) -> None:
    call = await fastagi.dial(answered=True)

    assert await call.service.send('VERBOSE "call started" 1') == "200 result=1"
    assert await call.service.send("EXEC Wait 1") == "200 result=0"
    assert await call.service.send("NOOP") == "200 result=0"
    assert any(note.startswith("EXEC Wait 1") for note in (await call.hang_up_and_result()).transcript.notes)


async def test_unknown_verb_gets_510(fastagi: FastAgi) -> None:
    call = await fastagi.dial(answered=True)

    assert await call.service.send("FROBNICATE now") == "510 Invalid or unknown command"
    assert await call.service.send("STREAM") == "510 Invalid or unknown command"
    assert await call.service.send("ANSWER\r") == "510 Invalid or unknown command"  # only \n is stripped
    assert await call.service.send('SAY NUMBER 42 ""') == "510 Invalid or unknown command"
    notes = (await call.hang_up_and_result()).transcript.notes
    assert notes[0] == "SAY NUMBER 42: a real Asterisk command the simulator does not run"


async def test_bad_arguments_get_the_520_usage_block(fastagi: FastAgi) -> None:
    call = await fastagi.dial(answered=True)

    reply = await call.service.send("GET DATA")
    assert reply.splitlines() == [
        "520-Invalid command syntax.  Proper usage follows:",
        "Stream the given <replaceable>file</replaceable>, and receive DTMF data.",
        "Returns the digits received from the channel at the other end.",
        "520 End of proper usage.",
    ]
    parser = ReplyParser()
    parsed = [parser.feed(line) for line in reply.splitlines()][-1]
    assert parsed is not None and parsed.code == 520  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "command",
    [
        'SAY DIGITS abc ""',
        "SAY DIGITS 123",
        "WAIT FOR DIGIT",
        "WAIT FOR DIGIT soon",
        "STREAM FILE keybox/welcome",
        'STREAM FILE keybox/welcome "" later',
        "SET VARIABLE ONLY_NAME",
        "GET VARIABLE",
        "CHANNEL STATUS a b",
        "HANGUP a b",
        "VERBOSE",
        "EXEC",
    ],
)
async def test_each_usage_block_is_well_formed(fastagi: FastAgi, command: str) -> None:
    call = await fastagi.dial(answered=True)

    lines = (await call.service.send(command)).splitlines()
    assert lines[0] == "520-Invalid command syntax.  Proper usage follows:"
    assert lines[-1] == "520 End of proper usage."
    assert len(lines) >= 3
    assert await call.service.send("CHANNEL STATUS") == "200 result=6"  # the session goes on


async def test_a_line_longer_than_asterisks_buffer_is_read_as_two_commands(fastagi: FastAgi) -> None:
    call = await fastagi.dial(answered=True)
    command = "VERBOSE " + "x" * 2039 + "tail"  # 2047 bytes, then "tail"

    call.service.writer.write(command.encode() + b"\n")
    assert await call.service.line() == "200 result=1"
    assert await call.service.line() == "510 Invalid or unknown command"
    await call.hang_up_and_result()
