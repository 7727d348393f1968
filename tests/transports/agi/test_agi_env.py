from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from ivr.errors import AgiProtocolError
from ivr.transports.agi import LINE_LIMIT, AgiEnvironment, read_environment

if TYPE_CHECKING:
    from conftest import Link

# What Asterisk's setup_env sends for a FastAGI call to agi://ivr:4573/keybox?lang=fr.
FASTAGI_ENV = [
    b"agi_network: yes",
    b"agi_network_script: keybox?lang=fr&debug=",
    b"agi_request: agi://ivr:4573/keybox?lang=fr&debug=",
    b"agi_channel: PJSIP/trunk-00000012",
    b"agi_language: fr",
    b"agi_type: PJSIP",
    b"agi_uniqueid: 1700000000.42",
    b"agi_version: 20.5.0",
    b"agi_callerid: 5145550123",
    b"agi_calleridname: Jos\xe9 Tremblay",
    b"agi_callingpres: 0",
    b"agi_dnid: 18005550199",
    b"agi_rdnis: unknown",
    b"agi_context: from-trunk",
    b"agi_extension: 18005550199",
    b"agi_priority: 2",
    b"agi_enhanced: 0.0",
    b"agi_accountcode: ",
    b"agi_threadid: 140000000000000",
    b"agi_arg_1: first",
    b"agi_arg_2: second: with colon",
]


def env(*lines: str | bytes) -> AgiEnvironment:
    return AgiEnvironment.from_lines(lines)


def test_fastagi_environment_accessors() -> None:
    environment = AgiEnvironment.from_lines(FASTAGI_ENV)

    assert environment.request == "agi://ivr:4573/keybox?lang=fr&debug="
    assert environment.channel == "PJSIP/trunk-00000012"
    assert environment.language == "fr"
    assert environment.unique_id == "1700000000.42"
    assert environment.caller_id == "5145550123"
    assert environment.caller_id_name == "Jos\ufffd Tremblay"
    assert environment.extension == "18005550199"
    assert environment.context == "from-trunk"
    assert environment.network_script == "keybox?lang=fr&debug="
    assert environment.route == "keybox"
    assert dict(environment.query) == {"lang": "fr", "debug": ""}
    assert environment.args == ("first", "second: with colon")
    assert environment.get("agi_accountcode", "absent") == ""
    assert environment.get("agi_nothing", "absent") == "absent"


def test_values_split_on_the_first_colon_space_only() -> None:
    environment = env("agi_channel: Local/a: b@ctx-0001;1", "agi_callerid: 1:2: 3")

    assert environment.channel == "Local/a: b@ctx-0001;1"
    assert environment.caller_id == "1:2: 3"


def test_empty_values_with_or_without_the_trailing_space() -> None:
    environment = env("agi_accountcode: ", "agi_dnid:", "agi_language: ")

    assert environment.values == {"agi_accountcode": "", "agi_dnid": "", "agi_language": ""}
    assert environment.language == "en"


def test_lines_without_colon_space_are_skipped() -> None:
    environment = env("garbage", "agi_request keybox", ": no key", "agi_channel: SIP/1\r\n")

    assert environment.values == {"agi_channel": "SIP/1"}


def test_unknown_caller_id_is_none() -> None:
    environment = env("agi_callerid: unknown", "agi_calleridname: unknown")

    assert (environment.caller_id, environment.caller_id_name) == (None, None)
    assert env().caller_id is None


def test_defaults_when_asterisk_sent_nothing() -> None:
    environment = env()

    assert (environment.language, environment.route) == ("en", "")
    assert (environment.args, dict(environment.query)) == ((), {})


@pytest.mark.parametrize(
    ("script", "route", "query"),
    [
        ("keybox", "keybox", {}),
        ("keybox?lang=fr", "keybox", {"lang": "fr"}),
        ("/keybox", "keybox", {}),
        ("/identify/?x=1&y=%20z", "identify", {"x": "1", "y": " z"}),
        ("announce?", "announce", {}),
    ],
)
def test_route_and_query_from_network_script(script: str, route: str, query: dict[str, str]) -> None:
    environment = env(f"agi_network_script: {script}", "agi_arg_1: ignored")

    assert (environment.route, dict(environment.query)) == (route, query)


def test_classic_agi_takes_the_route_from_its_first_argument() -> None:
    environment = env("agi_request: /usr/lib/ivr/agi", "agi_arg_1: identify?lang=es")

    assert (environment.route, dict(environment.query)) == ("identify", {"lang": "es"})


def test_args_in_numeric_order_up_to_the_first_gap() -> None:
    numbered = [f"agi_arg_{n}: a{n}" for n in (10, 2, 1, 3, 4, 5, 6, 7, 8, 9, 11, 13)]

    assert env(*numbered).args == tuple(f"a{n}" for n in range(1, 12))


def test_an_argument_number_no_asterisk_sends_is_no_argument() -> None:
    environment = env("agi_arg_1: keybox", f"agi_arg_{'2' * 5000}: x", "agi_arg_00002: y")

    assert environment.args == ("keybox",)  # never an int() of 5,000 digits
    assert environment.get(f"agi_arg_{'2' * 5000}") == "x"


async def test_read_environment_stops_at_the_blank_line(link: Link) -> None:
    await link.asterisk.send(*FASTAGI_ENV, b"", b"200 result=0")

    environment = await read_environment(link.reader, timeout=1)

    assert environment == AgiEnvironment.from_lines(FASTAGI_ENV)
    assert await link.reader.readline() == b"200 result=0\n"


async def test_peer_closing_before_the_blank_line_is_an_error(link: Link) -> None:
    await link.asterisk.send(*FASTAGI_ENV[:3])
    link.asterisk.writer.close()

    with pytest.raises(AgiProtocolError, match="closed after 3 AGI environment lines"):
        await read_environment(link.reader, timeout=1)


async def test_peer_silent_before_the_blank_line_times_out(link: Link) -> None:
    await link.asterisk.send(*FASTAGI_ENV[:3])

    with pytest.raises(AgiProtocolError, match=r"no complete AGI environment within 0\.05 s"):
        await read_environment(link.reader, timeout=0.05)


async def test_endless_environment_is_refused(link: Link) -> None:
    await link.asterisk.send(*(f"agi_x{n}: y".encode() for n in range(600)))

    with pytest.raises(AgiProtocolError, match="too large"):
        await read_environment(link.reader, timeout=1)


async def test_over_long_environment_line_is_refused(link: Link) -> None:
    link.asterisk.writer.write(b"agi_channel: " + b"x" * (LINE_LIMIT * 2))
    await link.asterisk.writer.drain()

    with pytest.raises(AgiProtocolError, match="too long"):
        await read_environment(link.reader, timeout=1)


async def test_connection_reset_while_reading_the_environment(link: Link) -> None:
    await link.asterisk.send(*FASTAGI_ENV[:2])
    link.asterisk.reset()

    with pytest.raises(AgiProtocolError):
        await asyncio.wait_for(read_environment(link.reader, timeout=1), 2)
