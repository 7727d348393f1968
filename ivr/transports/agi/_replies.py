"""What Asterisk answers to an AGI command, parsed one line at a time (no I/O here).

The reply forms come from res_agi.c and app_stack.c:

* ``200 result=N`` and its variants: ``200 result=-1``, ``200 result=`` (GET DATA, only ``#``
  pressed), ``200 result=<digits> (timeout)`` (GET DATA, ``handle_getdata``), ``200 result=0
  endpos=N`` (STREAM FILE, ``handle_streamfile``), ``200 result=1 (value)`` (GET VARIABLE),
  ``200 result=1 (speech) endpos=N results=…`` (SPEECH RECOGNIZE), ``200 result=0 Gosub complete``.
* ``100 result=0 Trying...``: an interim line (GOSUB) before the real ``200``.
* ``503 result=-2 Memory allocation failure``.
* ``510 Invalid or unknown command`` and ``511 Command Not Permitted on a dead channel[ or
  intercept routine]`` (``agi_handle_command``).
* ``520 Invalid command syntax.  Proper usage not available.`` on one line, or
  ``520-Invalid command syntax.  Proper usage follows:``, the usage text, then
  ``520 End of proper usage.``. The usage is written with ``"%s"``, so when it lacks a final
  newline the end marker is glued to its last line.
* ``HANGUP``: sent unsolicited on a FastAGI socket by ``run_agi`` when the channel hangs up
  (and once more when res_agi stops). It arrives between commands, so it may sit in front of
  the reply to the next command, which Asterisk then runs in "dead" mode.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ivr.errors import AgiProtocolError

__all__ = ["AgiReply", "Hangup", "ReplyParser"]

_STATUS = re.compile(r"(?P<code>\d{3})(?P<sep>[ -])(?P<rest>.*)", re.DOTALL)
_RESULT = re.compile(r"result=(?P<value>\S*)(?:\s+(?P<tail>.*))?", re.DOTALL)
_INTEGER = re.compile(r"-?\d+")
_ENDPOS = re.compile(r"(?:^|\s)endpos=(?P<endpos>-?\d+)")
_FINAL_CODES = frozenset({200, 503, 510, 511, 520})
_USAGE_END = "520 End of proper usage."
# A usage text is a few dozen lines; past this the peer is not Asterisk.
_MAX_USAGE_LINES = 256
_MAX_SHOWN = 80
_DIGIT = re.compile(r"[0-9]")
# handle_getdata's buffer is 1024 bytes: no result res_agi writes is longer. Bounding it (and
# endpos, a 64-bit offset) also keeps int() under Python's 4,300-digit limit.
_MAX_RESULT = 1024
_MAX_ENDPOS = 20


@dataclass(frozen=True)
class AgiReply:
    """One complete reply to one command.

    `result` is the ``result=`` value as an int when it is one; `result_text` is the same
    value exactly as sent, which is what GET DATA callers need: its digits may start with ``0``
    or hold ``*`` (``200 result=*0``). `data` is the parenthesised part (``timeout``, ``dtmf``,
    a variable's value) or, for replies without ``result=`` (510, 511, 520), their text.

    The repr leaves out `result`, `result_text` and `raw`: after GET DATA they hold what the
    caller typed, which may be a PIN.
    """

    code: int
    result: int | None = field(repr=False)
    data: str
    timeout: bool
    endpos: int | None
    raw: str = field(repr=False)
    result_text: str = field(default="", repr=False)


@dataclass(frozen=True)
class Hangup:
    """The unsolicited ``HANGUP`` line: the caller is gone, whatever reply follows."""

    raw: str = "HANGUP"


class ReplyParser:
    """Turns Asterisk's lines into replies: feed one line, get `None` until a reply is complete.

    The parser keeps only the state of a multi-line ``520`` usage block, so one instance
    serves a whole connection.
    """

    def __init__(self) -> None:
        self._block: list[str] | None = None

    def feed(self, line: bytes | str) -> AgiReply | Hangup | None:
        """Take one line (its newline optional); return the event it completes, if any.

        Raises `AgiProtocolError` for a line Asterisk does not send.
        """
        text = _decode(line)
        if self._block is not None:
            return self._feed_usage(self._block, text)
        if text == "HANGUP":
            return Hangup()
        status = _STATUS.fullmatch(text)
        if status is None:
            raise _unexpected("a line that is not an AGI reply", text)
        code, rest = int(status["code"]), status["rest"]
        if 100 <= code < 200:
            return None
        if status["sep"] == "-":
            if code != 520:
                raise _unexpected("a multi-line reply other than 520", text)
            self._block = [text]
            return None
        if code not in _FINAL_CODES:
            raise _unexpected(f"an unknown reply code {code}", text)
        return _parse_final(code, rest, text)

    def _feed_usage(self, block: list[str], text: str) -> AgiReply | None:
        """Collect a ``520-`` block (its first line is `block[0]`) until its end marker."""
        if text.endswith(_USAGE_END):
            self._block = None
            last = text[: -len(_USAGE_END)]
            usage = [*block[1:], last] if last else block[1:]
            raw = "\n".join([*block, text])
            return AgiReply(code=520, result=None, data="\n".join(usage), timeout=False, endpos=None, raw=raw)
        if len(block) > _MAX_USAGE_LINES:
            raise _unexpected("a 520 usage text without end", text)
        block.append(text)
        return None


def _parse_final(code: int, rest: str, raw: str) -> AgiReply:
    result_match = _RESULT.fullmatch(rest)
    if result_match is None:
        if code == 200:
            raise _unexpected("a 200 reply without result=", raw)
        return AgiReply(code=code, result=None, data=rest, timeout=False, endpos=None, raw=raw)
    value = result_match["value"]
    if len(value) > _MAX_RESULT:
        raise _unexpected("an over-long result", raw)
    data, after = _split_data(result_match["tail"] or "", raw)
    endpos = _ENDPOS.search(after)
    if endpos and len(endpos["endpos"]) > _MAX_ENDPOS:
        raise _unexpected("an over-long endpos", raw)
    return AgiReply(
        code=code,
        result=int(value) if _INTEGER.fullmatch(value) else None,
        data=data,
        timeout=data == "timeout",
        endpos=int(endpos["endpos"]) if endpos else None,
        raw=raw,
        result_text=value,
    )


def _split_data(tail: str, raw: str) -> tuple[str, str]:
    """Split ``(data) rest`` into its parts.

    A variable's value (``200 result=1 (%s)``) may itself hold parentheses, so a tail that ends
    with ``)`` is all data; otherwise the data ends at the first ``)`` (``(dtmf) endpos=N``).
    """
    if not tail.startswith("("):
        return "", tail
    if tail.endswith(")"):
        return tail[1:-1], ""
    close = tail.find(")")
    if close < 0:
        raise _unexpected("an unclosed parenthesis", raw)
    return tail[1:close], tail[close + 1 :]


def _decode(line: bytes | str) -> str:
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    return line.rstrip("\r\n")


def _unexpected(what: str, line: str) -> AgiProtocolError:
    # A garbled GET DATA reply holds what the caller typed (a PIN): only the status code keeps
    # its digits in a message that will be logged.
    status = _STATUS.match(line)
    keep = status.start("rest") if status else 0
    shown = line[:keep] + _DIGIT.sub("*", line[keep:_MAX_SHOWN]) + ("…" if len(line) > _MAX_SHOWN else "")
    return AgiProtocolError(f"Asterisk sent {what}: {shown!r}")
