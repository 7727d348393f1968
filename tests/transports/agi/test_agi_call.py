"""`AgiCall` against a scripted Asterisk on loopback: the exact lines sent, the values returned."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, TypeVar

import pytest

from ivr.errors import AgiProtocolError, ChannelHangupError
from ivr.flow.call import Call, Entry
from ivr.logging import bind_call
from ivr.transports.agi import AgiCall, AgiEnvironment

if TYPE_CHECKING:
    from conftest import CapturedLog, Link

T = TypeVar("T")
PATIENCE = 2.0
DEAD = "511 Command Not Permitted on a dead channel or intercept routine"
UP = "200 result=6"
GET_PIN = "GET DATA keybox/enter-pin 6000 4"
PLAY_WELCOME = 'STREAM FILE keybox/welcome ""'

FASTAGI_ENV = [
    "agi_network: yes",
    "agi_network_script: keybox?lang=fr&source=",
    "agi_request: agi://127.0.0.1/keybox?lang=fr&source=",
    "agi_channel: PJSIP/trunk-00000001",
    "agi_language: en",
    "agi_uniqueid: 1717000000.42",
    "agi_callerid: 5145550123",
    "agi_calleridname: unknown",
]


def make_call(link: Link, *lines: str) -> AgiCall:
    return AgiCall(link.channel, AgiEnvironment.from_lines(lines or FASTAGI_ENV))


async def converse(link: Link, operation: Awaitable[T], *exchanges: tuple[str, str | Sequence[str]]) -> T:
    """Run `operation`; for each exchange check the command it sent and answer it."""
    task = asyncio.ensure_future(operation)
    for expected, replies in exchanges:
        assert await link.asterisk.command() == expected
        await link.asterisk.send(*([replies] if isinstance(replies, str) else replies))
    return await asyncio.wait_for(task, PATIENCE)


async def assert_nothing_more_written(link: Link) -> None:
    link.channel.close()
    assert await link.asterisk.rest() == b""


# -- what the flow reads ------------------------------------------------------------------


def test_it_is_a_call() -> None:
    """Everything the flow may use of a `Call` is on `AgiCall`, in the same shape: a property
    where the protocol has one, a coroutine taking the same parameters where it has a method."""
    members = [name for name in vars(Call) if not name.startswith("_")]
    assert "read_digits" in members and "call_id" in members
    for name in members:
        wanted, got = inspect.getattr_static(Call, name), inspect.getattr_static(AgiCall, name, None)
        assert got is not None, f"AgiCall has no {name}"
        if isinstance(wanted, property):
            assert isinstance(got, property), f"{name} is not a property"
        else:
            assert inspect.iscoroutinefunction(got), f"{name} is not a coroutine"
            assert inspect.signature(got).parameters.keys() == inspect.signature(wanted).parameters.keys(), name
            defaults = [(p.name, p.default) for p in inspect.signature(wanted).parameters.values()]
            assert [(p.name, p.default) for p in inspect.signature(got).parameters.values()] == defaults, name


def test_fastagi_properties(link: Link) -> None:
    call = make_call(link)

    assert call.call_id == "1717000000.42"
    assert call.route == "keybox"
    assert call.caller_id == "5145550123"
    assert call.language == "en"
    assert call.variables == {"lang": "fr", "source": ""}


def test_classic_properties_and_withheld_caller(link: Link) -> None:
    call = make_call(
        link,
        "agi_request: /usr/local/bin/ivr-agi",
        "agi_language: es",
        "agi_uniqueid: ",
        "agi_callerid: unknown",
        "agi_arg_1: announce",
        "agi_arg_2: job-7",
        "agi_arg_3: x y",
    )

    assert call.route == "announce"
    assert call.caller_id == "unknown"
    assert call.language == "es"
    assert call.variables == {"arg2": "job-7", "arg3": "x y"}
    assert call.call_id.startswith("ivr-") and len(call.call_id) > 20
    assert make_call(link, "agi_arg_1: announce").call_id != call.call_id


def test_route_override_takes_its_own_query(link: Link) -> None:
    env = AgiEnvironment.from_lines(["agi_arg_1: agi", "agi_arg_2: 9"])
    call = AgiCall(link.channel, env, route="/identify?lang=es")

    assert call.route == "identify"
    assert call.variables == {"lang": "es", "arg2": "9"}


# -- each operation: the line sent, the value returned ------------------------------------


async def test_answer_when_the_channel_is_not_up(link: Link) -> None:
    call = make_call(link)

    await converse(link, call.answer(), ("CHANNEL STATUS", "200 result=4"), ("ANSWER", "200 result=0"))

    await assert_nothing_more_written(link)


async def test_answer_is_skipped_when_the_channel_is_up(link: Link) -> None:
    call = make_call(link)

    await converse(link, call.answer(), ("CHANNEL STATUS", "200 result=6"))

    await assert_nothing_more_written(link)


async def test_answer_on_a_dead_channel_raises(link: Link) -> None:
    with pytest.raises(ChannelHangupError):
        await converse(link, make_call(link).answer(), ("CHANNEL STATUS", DEAD))


@pytest.mark.parametrize(
    ("escape", "line", "reply", "key"),
    [
        ("", 'STREAM FILE keybox/welcome ""', "200 result=0 endpos=8000", ""),
        ("0*", "STREAM FILE keybox/welcome 0*", "200 result=48 endpos=1200", "0"),
        ("0*", "STREAM FILE keybox/welcome 0*", "200 result=42 endpos=1200", "*"),
    ],
)
async def test_play(link: Link, escape: str, line: str, reply: str, key: str) -> None:
    call = make_call(link)

    assert await converse(link, call.play("keybox/welcome", escape), (line, reply)) == key


async def test_say_digits(link: Link) -> None:
    call = make_call(link)

    assert await converse(link, call.say_digits("0042"), ('SAY DIGITS 0042 ""', "200 result=0")) == ""
    assert await converse(link, call.say_digits("7", "#"), ("SAY DIGITS 7 #", "200 result=35")) == "#"


@pytest.mark.parametrize(
    ("reply", "entry"),
    [
        ("200 result=0123", Entry("0123", False)),
        ("200 result=12 (timeout)", Entry("12", True)),
        ("200 result= (timeout)", Entry("", True)),
        ("200 result=", Entry("", False)),
        ("200 result=*0", Entry("*0", False)),
    ],
)
async def test_read_digits(link: Link, reply: str, entry: Entry) -> None:
    call = make_call(link)

    got = await converse(link, call.read_digits("keybox/enter-pin", 6000, 4), (GET_PIN, reply))

    assert got == entry


@pytest.mark.parametrize(("reply", "key"), [("200 result=0", ""), ("200 result=49", "1"), ("200 result=35", "#")])
async def test_wait_for_digit(link: Link, reply: str, key: str) -> None:
    call = make_call(link)

    assert await converse(link, call.wait_for_digit(5000), ("WAIT FOR DIGIT 5000", reply)) == key


async def test_set_variable_quotes_what_needs_it(link: Link) -> None:
    call = make_call(link)

    await converse(
        link, call.set_variable("IVR_LAST_STEP", "enter-pin"), ("SET VARIABLE IVR_LAST_STEP enter-pin", "200 result=1")
    )
    await converse(
        link, call.set_variable("IVR_NAME", 'Jo "J" Doe'), ('SET VARIABLE IVR_NAME "Jo \\"J\\" Doe"', "200 result=1")
    )


async def test_set_language_sets_the_channel_language_and_tracks_it(link: Link) -> None:
    call = make_call(link)

    await converse(link, call.set_language("fr"), ("SET VARIABLE CHANNEL(language) fr", "200 result=1"))

    assert call.language == "fr"


async def test_transfer_sets_the_variable_and_leaves_the_channel_up(link: Link) -> None:
    call = make_call(link)

    await converse(
        link, call.transfer("Queue(keybox-agents)"), ("SET VARIABLE IVR_TRANSFER Queue(keybox-agents)", "200 result=1")
    )
    await call.finish()  # what the server does next: nothing, the dialplan takes over

    assert call.transferred and call.ended
    await assert_nothing_more_written(link)


async def test_hangup(link: Link) -> None:
    call = make_call(link)

    await converse(link, call.hangup(), ("HANGUP", "200 result=1"))
    await call.finish()

    assert call.ended and not call.transferred
    await assert_nothing_more_written(link)


async def test_hangup_when_the_caller_is_gone_is_quiet(link: Link) -> None:
    call = make_call(link)

    await converse(link, call.hangup(), ("HANGUP", ("HANGUP", DEAD)))
    await call.hangup()  # the channel knows: nothing is sent

    await assert_nothing_more_written(link)


async def test_finish_hangs_up_a_call_the_flow_left_open(link: Link) -> None:
    call = make_call(link)

    await converse(link, call.finish(), ("HANGUP", "200 result=1"))
    await call.finish()

    await assert_nothing_more_written(link)


# -- result=-1: a missing sound, or a caller who hung up ----------------------------------


async def test_missing_sound_is_logged_and_the_call_goes_on(link: Link, captured_log: CapturedLog) -> None:
    call = make_call(link)

    key = await converse(
        link,
        call.play("keybox/no-such-prompt"),
        ('STREAM FILE keybox/no-such-prompt ""', "200 result=-1 endpos=0"),
        ("CHANNEL STATUS", "200 result=6"),
    )
    assert key == ""
    key = await converse(link, call.play("keybox/goodbye"), ('STREAM FILE keybox/goodbye ""', "200 result=0 endpos=9"))
    assert key == ""

    [event] = captured_log.events("agi.sound_missing")
    assert (event["level"], event["sound"], event["language"]) == ("error", "keybox/no-such-prompt", "en")


async def test_missing_prompt_of_get_data_is_an_empty_timed_out_entry(link: Link, captured_log: CapturedLog) -> None:
    call = make_call(link)

    entry = await converse(
        link,
        call.read_digits("keybox/enter-key-number", 6000, 10),
        ("GET DATA keybox/enter-key-number 6000 10", "200 result=-1"),
        ("CHANNEL STATUS", "200 result=6"),
    )

    assert entry == Entry("", True)
    assert captured_log.events("agi.sound_missing")[0]["sound"] == "keybox/enter-key-number"


async def test_missing_digit_sounds_are_logged_without_the_digits(link: Link, captured_log: CapturedLog) -> None:
    call = make_call(link)

    await converse(link, call.say_digits("918273"), ('SAY DIGITS 918273 ""', "200 result=-1"), ("CHANNEL STATUS", UP))

    assert captured_log.events("agi.sound_missing")
    assert "918273" not in captured_log.text


async def test_minus_one_with_a_hangup_line_is_a_hang_up(link: Link) -> None:
    call = make_call(link)

    with pytest.raises(ChannelHangupError):
        await converse(link, call.play("keybox/welcome"), (PLAY_WELCOME, ("HANGUP", "200 result=-1 endpos=0")))

    await assert_nothing_more_written(link)  # no CHANNEL STATUS: the HANGUP line said it all


async def test_minus_one_then_511_to_channel_status_is_a_hang_up(link: Link, captured_log: CapturedLog) -> None:
    call = make_call(link)

    with pytest.raises(ChannelHangupError):
        await converse(
            link,
            call.read_digits("keybox/enter-pin", 6000, 4),
            ("GET DATA keybox/enter-pin 6000 4", "200 result=-1"),
            ("CHANNEL STATUS", DEAD),
        )

    assert not captured_log.events("agi.sound_missing")


async def test_wait_for_digit_minus_one_on_a_dead_channel(link: Link) -> None:
    call = make_call(link)

    with pytest.raises(ChannelHangupError):
        await converse(
            link, call.wait_for_digit(3000), ("WAIT FOR DIGIT 3000", "200 result=-1"), ("CHANNEL STATUS", DEAD)
        )


async def test_a_hang_up_known_out_of_band_stops_every_command(link: Link) -> None:
    call = make_call(link)
    task = asyncio.ensure_future(call.play("keybox/welcome"))
    assert await link.asterisk.command() == 'STREAM FILE keybox/welcome ""'

    call.mark_hung_up()  # classic AGI's SIGHUP
    await link.asterisk.send("200 result=-1 endpos=0")

    with pytest.raises(ChannelHangupError):
        await task
    with pytest.raises(ChannelHangupError):
        await call.set_variable("IVR_OUTCOME", "caller_hangup")
    await call.hangup()
    await call.finish()
    await assert_nothing_more_written(link)


# -- text that must never reach Asterisk --------------------------------------------------


async def test_refused_arguments_are_logged_and_never_sent(link: Link, captured_log: CapturedLog) -> None:
    call = make_call(link)

    await call.set_variable("IVR_NAME", "Mallory\nHANGUP")
    assert await call.play("keybox/welcome", "0 1") == ""
    assert await call.say_digits("12a4") == ""
    assert await call.read_digits("keybox/enter-pin", 6000, 0) == Entry("", True)
    await call.set_language("fr\nHANGUP")
    with pytest.raises(AgiProtocolError):
        await call.transfer("Queue(agents)\nHANGUP")

    assert call.language == "en" and not call.transferred
    events = captured_log.events("agi.bad_argument")
    assert [e["operation"] for e in events] == [
        "set_variable", "play", "say_digits", "read_digits", "set_language", "transfer"
    ]
    assert all(e["level"] == "error" for e in events)
    assert "Mallory" not in captured_log.text
    await assert_nothing_more_written(link)


async def test_no_log_line_holds_what_the_caller_typed(link: Link, captured_log: CapturedLog) -> None:
    call = make_call(link)

    with bind_call(call.call_id, route=call.route):
        entry = await converse(link, call.read_digits("keybox/enter-pin", 6000, 4), (GET_PIN, "200 result=4821"))
        await converse(
            link,
            call.play("keybox/missing"),
            ('STREAM FILE keybox/missing ""', "200 result=-1 endpos=0"),
            ("CHANNEL STATUS", "200 result=6"),
        )
        await converse(link, call.wait_for_digit(10), ("WAIT FOR DIGIT 10", "200 result=-1"), ("CHANNEL STATUS", UP))
        await converse(link, call.hangup(), ("HANGUP", "200 result=1"))

    assert entry.digits == "4821"
    assert captured_log.events()  # something was logged, at debug level
    assert "4821" not in captured_log.text
    assert all(e["call_id"] == "1717000000.42" for e in captured_log.events())
