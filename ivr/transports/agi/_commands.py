"""AGI command lines, built so that Asterisk parses each argument back exactly as given.

res_agi.c reads one command per line (``fgets`` into a 2048-byte buffer, ``AGI_BUF_LEN``) and
splits it with ``parse_args``: words are separated by spaces or tabs, a ``"`` toggles quoting
(and starts a word, even an empty one), a ``\\`` makes the next character literal. So an
argument is safe inside double quotes once ``\\`` and ``"`` are escaped; a newline can never be
made safe (it ends the command and starts another one), nor can a line longer than the buffer
(its tail would be read as a second command).

The builders return the line without its newline; `AgiChannel.execute` adds it.
"""

from __future__ import annotations

import re

__all__ = [
    "MAX_COMMAND_BYTES",
    "answer",
    "channel_status",
    "command",
    "exec_",
    "get_data",
    "hangup",
    "quote",
    "say_digits",
    "set_variable",
    "split_command",
    "stream_file",
    "verbose",
    "wait_for_digit",
]

# fgets(buf, 2048) keeps 2047 bytes, the newline included.
MAX_COMMAND_BYTES = 2046

_VERB = re.compile(r"[A-Z]+(?: [A-Z]+)*")
_FORBIDDEN = re.compile(r"[\r\n\x00]")
_NEEDS_QUOTES = re.compile(r'[ \t"\\]')
_DIGITS = re.compile(r"[0-9]+")
_ESCAPE_DIGITS = re.compile(r"[0-9*#A-D]*")
_APPLICATION = re.compile(r"[A-Za-z0-9_]+")
# GET DATA reads into char data[1024] (handle_getdata), the terminating NUL included.
_MAX_GET_DATA_DIGITS = 1023


def quote(arg: str) -> str:
    """Wrap `arg` in double quotes, escaping ``\\`` and ``"`` as ``parse_args`` expects."""
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def command(verb: str, *args: str) -> str:
    """Build ``VERB arg …``; refuse anything that could end the line early or split it.

    An argument is sent bare when ``parse_args`` reads it back unchanged (not empty, no space,
    tab, quote or backslash) and quoted otherwise, so lines read like the ones in the
    dialplan docs (``GET DATA keybox/enter-pin 6000 4``). Raises `ValueError` for a newline,
    carriage return or NUL in any argument, or a line longer than Asterisk reads at once.
    """
    if not _VERB.fullmatch(verb):
        raise ValueError(f"not an AGI verb: {verb!r}")
    for arg in args:
        if _FORBIDDEN.search(arg):
            raise ValueError(f"an AGI argument may not hold a newline, carriage return or NUL: {arg[:40]!r}")
    line = " ".join([verb, *(quote(arg) if not arg or _NEEDS_QUOTES.search(arg) else arg for arg in args)])
    if len(line.encode("utf-8")) > MAX_COMMAND_BYTES:
        raise ValueError(f"AGI command longer than {MAX_COMMAND_BYTES} bytes: {verb} …")
    return line


def split_command(line: str) -> list[str]:
    """Split a command line into words exactly as res_agi.c's ``parse_args`` does.

    This is what Asterisk will see; a fake Asterisk (tests, simulator) uses it to read our
    commands.
    """
    words: list[str] = []
    quoted = escaped = False
    between_words = True

    def add(char: str) -> None:
        nonlocal between_words
        if between_words:
            words.append("")
            between_words = False
        words[-1] += char

    for char in line:
        if char == '"' and not escaped:
            quoted = not quoted
            if quoted and between_words:
                words.append("")
                between_words = False
        elif char in " \t" and not quoted and not escaped:
            between_words = True
        elif char == "\\" and not escaped:
            escaped = True
            continue
        else:
            add(char)
        escaped = False
    return words


def stream_file(name: str, escape_digits: str = "") -> str:
    """``STREAM FILE <filename> <escape digits>``: both are required, so no escape digits is ``""``.

    Replies ``200 result=0 endpos=N``, the digit's ASCII code when one interrupted it, or
    ``200 result=-1 endpos=0`` on hang-up *and* when the sound file does not exist.
    """
    return command("STREAM FILE", _sound(name), _escape(escape_digits))


def get_data(name: str, timeout_ms: int, max_digits: int) -> str:
    """``GET DATA <file to stream> [timeout] [maxdigits]``: play `name`, collect DTMF.

    Replies ``200 result=<digits>``, ``200 result=<digits> (timeout)`` when the caller stopped
    early, ``200 result=`` when only ``#`` was pressed, ``200 result=-1`` on hang-up or a
    missing sound file. Read the digits from `AgiReply.result_text` (they may start with 0).
    """
    if timeout_ms < 0:
        raise ValueError(f"GET DATA timeout must be >= 0 ms, got {timeout_ms}")
    if not 1 <= max_digits <= _MAX_GET_DATA_DIGITS:
        raise ValueError(f"GET DATA max digits must be 1..{_MAX_GET_DATA_DIGITS}, got {max_digits}")
    return command("GET DATA", _sound(name), str(timeout_ms), str(max_digits))


def say_digits(digits: str, escape_digits: str = "") -> str:
    """``SAY DIGITS <number> <escape digits>``: speak each digit in the channel's language.

    res_agi.c checks the number with ``sscanf("%d")`` and answers 520 otherwise, so only 0-9.
    """
    if not _DIGITS.fullmatch(digits):
        raise ValueError("SAY DIGITS takes the digits 0-9 only")
    return command("SAY DIGITS", digits, _escape(escape_digits))


def wait_for_digit(timeout_ms: int) -> str:
    """``WAIT FOR DIGIT <timeout>``: result is the key's ASCII code, 0 when none came in time."""
    if timeout_ms < -1:
        raise ValueError("timeout_ms must be -1 (forever) or more")
    return command("WAIT FOR DIGIT", str(timeout_ms))


def answer() -> str:
    return command("ANSWER")


def hangup() -> str:
    return command("HANGUP")


def channel_status() -> str:
    """``CHANNEL STATUS``: ``200 result=<state>`` (6 is up); a dead channel gets ``511``."""
    return command("CHANNEL STATUS")


def set_variable(name: str, value: str) -> str:
    return command("SET VARIABLE", _name(name), value)


def exec_(application: str, options: str = "") -> str:
    """``EXEC <application> <options>``: options are the application's comma-separated args.

    Replies with what the application returned, ``-2`` when it does not exist.
    """
    if not _APPLICATION.fullmatch(application):
        raise ValueError(f"not a dialplan application name: {application!r}")
    return command("EXEC", application, options)


def verbose(message: str, level: int = 1) -> str:
    """``VERBOSE <message> <level>``: a line in Asterisk's console at verbosity `level` (1-4)."""
    if not 1 <= level <= 4:
        raise ValueError(f"VERBOSE level must be 1..4, got {level}")
    return command("VERBOSE", message, str(level))


def _sound(name: str) -> str:
    if not name:
        raise ValueError("a sound file name may not be empty")
    return name


def _name(name: str) -> str:
    if not name:
        raise ValueError("a channel variable name may not be empty")
    return name


def _escape(escape_digits: str) -> str:
    if not _ESCAPE_DIGITS.fullmatch(escape_digits):
        raise ValueError(f"escape digits are DTMF keys 0-9 * # A-D, got {escape_digits!r}")
    return escape_digits
