from __future__ import annotations

import pytest

from ivr.errors import AgiProtocolError
from ivr.transports.agi import AgiReply, Hangup, ReplyParser


def feed_all(*lines: str | bytes) -> list[AgiReply | Hangup | None]:
    parser = ReplyParser()
    return [parser.feed(line) for line in lines]


@pytest.mark.parametrize(
    ("line", "result", "result_text", "data", "timeout", "endpos"),
    [
        ("200 result=0", 0, "0", "", False, None),
        ("200 result=-1", -1, "-1", "", False, None),
        ("200 result=", None, "", "", False, None),
        ("200 result= (timeout)", None, "", "timeout", True, None),
        ("200 result=49 (timeout)", 49, "49", "timeout", True, None),
        ("200 result=12345 (timeout)", 12345, "12345", "timeout", True, None),
        ("200 result=0123", 123, "0123", "", False, None),
        ("200 result=*0", None, "*0", "", False, None),
        ("200 result=0 endpos=12345", 0, "0", "", False, 12345),
        ("200 result=-1 endpos=0", -1, "-1", "", False, 0),
        ("200 result=50 endpos=8640", 50, "50", "", False, 8640),
        ("200 result=1 (dtmf) endpos=67890", 1, "1", "dtmf", False, 67890),
        ("200 result=0 (timeout) endpos=160", 0, "0", "timeout", True, 160),
        ("200 result=1 (testvariable)", 1, "1", "testvariable", False, None),
        ("200 result=1 (Yip (EN) - 1910)", 1, "1", "Yip (EN) - 1910", False, None),
        ("200 result=1 ()", 1, "1", "", False, None),
        ("200 result=0 Gosub complete", 0, "0", "", False, None),
        (
            '200 result=1 (speech) endpos=4800 results=1 score0=87 text0="one (two)" grammar0=digits',
            1,
            "1",
            "speech",
            False,
            4800,
        ),
        ("200 result=1 (digit) digit=5 endpos=3200", 1, "1", "digit", False, 3200),
    ],
)
def test_200_reply_forms(
    line: str, result: int | None, result_text: str, data: str, timeout: bool, endpos: int | None
) -> None:
    reply = ReplyParser().feed(line)

    assert reply == AgiReply(200, result, data, timeout, endpos, line, result_text)


def test_bytes_with_newline_and_non_utf8_value() -> None:
    reply = ReplyParser().feed(b"200 result=1 (Jos\xe9)\r\n")

    assert isinstance(reply, AgiReply)
    assert (reply.result, reply.data) == (1, "Jos\ufffd")


@pytest.mark.parametrize(
    ("line", "code", "data"),
    [
        ("510 Invalid or unknown command", 510, "Invalid or unknown command"),
        ("511 Command Not Permitted on a dead channel", 511, "Command Not Permitted on a dead channel"),
        (
            "511 Command Not Permitted on a dead channel or intercept routine",
            511,
            "Command Not Permitted on a dead channel or intercept routine",
        ),
        (
            "520 Invalid command syntax.  Proper usage not available.",
            520,
            "Invalid command syntax.  Proper usage not available.",
        ),
    ],
)
def test_error_replies_are_complete_replies(line: str, code: int, data: str) -> None:
    reply = ReplyParser().feed(line)

    assert isinstance(reply, AgiReply)
    assert (reply.code, reply.result, reply.data, reply.raw) == (code, None, data, line)


def test_503_keeps_its_result() -> None:
    reply = ReplyParser().feed("503 result=-2 Memory allocation failure")

    assert isinstance(reply, AgiReply)
    assert (reply.code, reply.result) == (503, -2)


def test_hangup_line_is_an_event_and_the_reply_may_follow() -> None:
    dead = "511 Command Not Permitted on a dead channel"

    assert feed_all("HANGUP", dead) == [Hangup(), AgiReply(511, None, dead[4:], False, None, dead)]


def test_trying_is_skipped_until_the_final_reply() -> None:
    events = feed_all("100 result=0 Trying...", "200 result=0 Gosub complete")

    assert events[0] is None
    assert isinstance(events[1], AgiReply)
    assert (events[1].code, events[1].result) == (200, 0)


def test_multi_line_520_is_one_reply_and_its_text_is_not_read_as_replies() -> None:
    parser = ReplyParser()
    lines = [
        "520-Invalid command syntax.  Proper usage follows:",
        " Usage: GET DATA <file to stream> [timeout] [maxdigits]",
        "200 result=1 (testvariable)",
        "HANGUP",
        "520 End of proper usage.",
    ]

    events = [parser.feed(line) for line in lines]

    assert events[:-1] == [None, None, None, None]
    reply = events[-1]
    assert isinstance(reply, AgiReply)
    assert reply.code == 520
    assert reply.data == "\n".join(lines[1:4])
    assert reply.raw == "\n".join(lines)
    assert parser.feed("200 result=0") == AgiReply(200, 0, "", False, None, "200 result=0", "0")


def test_520_end_marker_glued_to_usage_without_newline() -> None:
    # c->usage printed with "%s" and no final newline: the marker ends its last line.
    events = feed_all(
        "520-Invalid command syntax.  Proper usage follows:",
        "Returns the digits received from the channel at the other end.520 End of proper usage.",
    )

    reply = events[-1]
    assert isinstance(reply, AgiReply)
    assert reply.data == "Returns the digits received from the channel at the other end."


def test_endless_520_usage_is_refused() -> None:
    parser = ReplyParser()
    parser.feed("520-Invalid command syntax.  Proper usage follows:")

    with pytest.raises(AgiProtocolError, match="without end"):
        for _ in range(1000):
            parser.feed("usage")


@pytest.mark.parametrize(
    "line",
    [
        "",
        "hello",
        "200",
        "200 OK",
        "2000 result=1",
        "404 result=0",
        "200-result=0",
        "200 result=1 (unclosed",
        "hangup",
        "agi_request: keybox",
    ],
)
def test_lines_asterisk_does_not_send_raise(line: str) -> None:
    with pytest.raises(AgiProtocolError, match="Asterisk sent"):
        ReplyParser().feed(line)


def test_protocol_error_shows_the_line_truncated() -> None:
    line = "garbage " + "x" * 500

    with pytest.raises(AgiProtocolError) as caught:
        ReplyParser().feed(line)

    message = str(caught.value)
    assert "garbage xxx" in message
    assert len(message) < 200


def test_repr_leaves_out_what_the_caller_typed() -> None:
    reply = ReplyParser().feed("200 result=4321 (timeout)")

    assert "4321" not in repr(reply)
    assert "timeout" in repr(reply)


def test_a_garbled_reply_never_echoes_what_the_caller_typed() -> None:
    """The error is logged by the flow: a PIN in a broken GET DATA reply must not reach it."""
    with pytest.raises(AgiProtocolError) as caught:
        ReplyParser().feed("200 result=2580 (timeout")
    message = str(caught.value)
    assert "2580" not in message
    assert "200 result=**** (timeout" in message
    with pytest.raises(AgiProtocolError) as caught:
        ReplyParser().feed("x2580")
    assert "2580" not in str(caught.value) and "25" not in str(caught.value)


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("200 result=" + "7" * 5000, id="GET-DATA-5000-digits"),
        pytest.param("200 result=" + "7" * 5000 + " (timeout)", id="GET-DATA-5000-digits-timeout"),
        pytest.param("200 result=-" + "1" * 5000, id="negative-5000-digits"),
        pytest.param("200 result=" + "*" * 1025, id="1025-keys"),
        pytest.param("200 result=0 endpos=" + "9" * 5000, id="endpos-5000-digits"),
        pytest.param("200 result=0 endpos=" + "9" * 21, id="endpos-past-64-bits"),
    ],
)
def test_an_over_long_result_is_a_protocol_error(line: str) -> None:
    """Past Python's 4,300-digit int() limit too: never a bare ValueError."""
    with pytest.raises(AgiProtocolError, match="over-long") as caught:
        ReplyParser().feed(line)
    assert "7777" not in str(caught.value)  # what the caller typed is never echoed


def test_the_longest_get_data_asterisk_sends_is_read() -> None:
    digits = "1" * 1023  # handle_getdata's 1024-byte buffer, its NUL aside
    reply = ReplyParser().feed(f"200 result={digits} (timeout)")
    assert isinstance(reply, AgiReply)
    assert (reply.result_text, reply.timeout) == (digits, True)
