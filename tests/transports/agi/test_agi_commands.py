from __future__ import annotations

from collections.abc import Callable

import pytest

from ivr.transports.agi import commands


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (commands.stream_file("keybox/welcome"), 'STREAM FILE keybox/welcome ""'),
        (commands.stream_file("keybox/choose-pod", "12*#"), "STREAM FILE keybox/choose-pod 12*#"),
        (commands.get_data("keybox/enter-pin", 6000, 4), "GET DATA keybox/enter-pin 6000 4"),
        (commands.say_digits("0042"), 'SAY DIGITS 0042 ""'),
        (commands.say_digits("7", "0"), "SAY DIGITS 7 0"),
        (commands.answer(), "ANSWER"),
        (commands.hangup(), "HANGUP"),
        (commands.channel_status(), "CHANNEL STATUS"),
        (commands.set_variable("IVR_LAST_STEP", "enter pin"), 'SET VARIABLE IVR_LAST_STEP "enter pin"'),
        (commands.set_variable("IVR_OUTCOME", ""), 'SET VARIABLE IVR_OUTCOME ""'),
        (commands.exec_("Queue", "keybox-agents"), "EXEC Queue keybox-agents"),
        (commands.exec_("Dial", "PJSIP/agent 1,30"), 'EXEC Dial "PJSIP/agent 1,30"'),
        (commands.exec_("Wait", ""), 'EXEC Wait ""'),
        (commands.verbose('caller said "hi"'), 'VERBOSE "caller said \\"hi\\"" 1'),
        (commands.verbose("x", 3), "VERBOSE x 3"),
    ],
)
def test_builders_match_res_agi_usage(line: str, expected: str) -> None:
    assert line == expected


@pytest.mark.parametrize(
    "value",
    ['"', "\\", '\\"', 'a"b\\c', "ends with \\", '""', "  spaced  ", "\t", "", "héllo wörld", "x" * 100],
)
def test_quote_round_trips_through_parse_args(value: str) -> None:
    assert commands.split_command(f"SET VARIABLE X {commands.quote(value)}") == ["SET", "VARIABLE", "X", value]


def test_command_arguments_round_trip_through_parse_args() -> None:
    args = ["plain", "", "with space", 'quote"', "back\\slash", "tab\there", "*#"]

    assert commands.split_command(commands.command("SET VARIABLE", *args)) == ["SET", "VARIABLE", *args]


def test_split_command_follows_parse_args() -> None:
    assert commands.split_command('a  "b c"d \\"e \\\\ "" f\\ g') == ["a", "b cd", '"e', "\\", "", "f g"]


@pytest.mark.parametrize("bad", ["\n", "\r", "\x00", "ok\nHANGUP", "a\r\nEXEC Dial x"])
@pytest.mark.parametrize(
    "build",
    [
        lambda bad: commands.stream_file(f"keybox/{bad}"),
        lambda bad: commands.get_data(f"keybox/{bad}", 6000, 4),
        lambda bad: commands.set_variable("IVR_OUTCOME", bad),
        lambda bad: commands.set_variable(f"X{bad}", "1"),
        lambda bad: commands.exec_("Dial", f"PJSIP/{bad}"),
        lambda bad: commands.verbose(bad),
        lambda bad: commands.command("NOOP", bad),
    ],
)
def test_line_breaks_and_nul_are_refused(build: Callable[[str], str], bad: str) -> None:
    with pytest.raises(ValueError, match="newline, carriage return or NUL"):
        build(bad)


def test_a_line_longer_than_asterisk_reads_at_once_is_refused() -> None:
    assert commands.verbose("x" * (commands.MAX_COMMAND_BYTES - len("VERBOSE  1")))
    with pytest.raises(ValueError, match="longer than"):
        commands.verbose("x" * (commands.MAX_COMMAND_BYTES - len("VERBOSE  1") + 1))


@pytest.mark.parametrize("digits", ["", "12a", "1 2", "-1", "+1", "١٢", "1.5"])
def test_say_digits_takes_0_to_9_only(digits: str) -> None:
    with pytest.raises(ValueError, match="0-9"):
        commands.say_digits(digits)


@pytest.mark.parametrize("escape", ["x", "1 2", '"', "e"])
def test_escape_digits_are_dtmf_keys(escape: str) -> None:
    with pytest.raises(ValueError, match="DTMF"):
        commands.stream_file("keybox/welcome", escape)


@pytest.mark.parametrize(
    "build",
    [
        lambda: commands.get_data("keybox/enter-pin", -1, 4),
        lambda: commands.get_data("keybox/enter-pin", 6000, 0),
        lambda: commands.get_data("keybox/enter-pin", 6000, 1024),
        lambda: commands.get_data("", 6000, 4),
        lambda: commands.stream_file(""),
        lambda: commands.exec_("Dial;Hangup", ""),
        lambda: commands.exec_("", ""),
        lambda: commands.verbose("x", 0),
        lambda: commands.command("stream file", "x"),
        lambda: commands.command("STREAM FILE\n", "x"),
    ],
)
def test_out_of_range_arguments_are_refused(build: Callable[[], str]) -> None:
    with pytest.raises(ValueError):
        build()
