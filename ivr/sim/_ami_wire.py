"""The Asterisk Manager Interface wire, as Asterisk 22's main/manager.c reads and writes it.

A message is lines of ``Key: Value`` ended by ``\\r\\n`` (a bare ``\\n`` is accepted too,
manager.c `get_input`), closed by an empty line. Responses carry the action's ``ActionID``
(manager.c `astman_send_response_full`); events start ``Event:`` then ``Privilege:``
(manager.c `__manager_event_sessions_va`). Header names are matched case-insensitively and the
first of several wins (manager.c `__astman_get_header`), except ``Variable``, which may repeat.
Each fact below names the file of Asterisk 22.9.0 it was read from.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "BANNER",
    "MAX_HEADERS",
    "MAX_MESSAGE_BYTES",
    "AmiMessage",
    "Headers",
    "MessageTooLarge",
    "ast_false",
    "ast_true",
    "encode",
    "event",
    "parse_caller_id",
    "parse_variables",
    "read_message",
    "response",
    "timestamp",
]

AMI_VERSION = "11.0.0"  # include/asterisk/manager.h (22.9.0): #define AMI_VERSION "11.0.0"
BANNER = f"Asterisk Call Manager/{AMI_VERSION}\r\n".encode()  # manager.c session_do: the welcome prompt

# Our own bounds on what a peer may send: Asterisk cuts lines at 1024 bytes and keeps 128
# headers (manager.h AST_MAX_MANHEADERS) but answers an error and reads on; the simulator is a
# test peer, so a client that sends this much is broken and is simply disconnected.
MAX_MESSAGE_BYTES = 64 * 1024
MAX_HEADERS = 200

Headers = list[tuple[str, str]]


class MessageTooLarge(Exception):
    """The peer sent a message over `MAX_MESSAGE_BYTES` or with more than `MAX_HEADERS` lines."""


@dataclass(frozen=True)
class AmiMessage:
    """One action as received: its header lines in order."""

    headers: tuple[tuple[str, str], ...]

    def get(self, name: str) -> str:
        """The first value of header `name` (case-insensitive), or "" (manager.c `astman_get_header`)."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), "")

    def all(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]


async def read_message(reader: asyncio.StreamReader) -> AmiMessage | None:
    """The next message, or None at end of stream (a message cut short by it included).

    `MessageTooLarge` past the bounds; the reader's own line limit must be `MAX_MESSAGE_BYTES`.
    """
    headers: list[tuple[str, str]] = []
    size = lines = 0
    while True:
        try:
            line = await reader.readline()
        except ValueError as error:  # one line beyond the reader's limit
            raise MessageTooLarge("line too long") from error
        if not line.endswith(b"\n"):
            return None
        size += len(line)
        lines += 1
        if size > MAX_MESSAGE_BYTES or lines > MAX_HEADERS + 1:
            raise MessageTooLarge(f"{size} bytes, {lines} lines")
        text = line.decode("utf-8", errors="replace").rstrip("\r\n")
        if not text:
            return AmiMessage(tuple(headers))
        key, colon, value = text.partition(":")
        if colon:  # a line with no colon matches no header in manager.c either
            headers.append((key, value.lstrip(" \t")))


def encode(headers: Iterable[tuple[str, str]]) -> bytes:
    """A message on the wire: ``Key: Value\\r\\n`` lines and the empty line."""
    return "".join(f"{key}: {value}\r\n" for key, value in headers).encode() + b"\r\n"


def response(action: AmiMessage, kind: str, message: str | None = None, **extra: str) -> Headers:
    """``Response`` then ``ActionID`` (when the action had one), then `extra`, then ``Message``.

    manager.c `astman_send_response_full`: Response, ActionID, [EventList], Message.
    """
    headers: Headers = [("Response", kind)]
    if action_id := action.get("ActionID"):
        headers.append(("ActionID", action_id))
    headers.extend(extra.items())
    if message is not None:
        headers.append(("Message", message))
    return headers


def event(name: str, privilege: str, headers: Iterable[tuple[str, str]]) -> Headers:
    """An event as manager.c `__manager_event_sessions_va` writes it: Event, Privilege, the rest.

    `privilege` is the event's class with ``,all`` (manager.c `authority_to_str` lists every
    class whose bit is set, and ``all`` is INT_MAX): ``call,all``, ``user,all``, ``system,all``.
    """
    return [("Event", name), ("Privilege", privilege), *headers]


def timestamp() -> str:
    """``<seconds>.<microseconds>`` as manager.c `action_ping` prints its Timestamp."""
    now = time.time()
    return f"{int(now)}.{int(now % 1 * 1_000_000):06d}"


def ast_true(value: str) -> bool:
    """main/utils.c `ast_true`: yes, true, y, t, 1, on (any case)."""
    return value.strip().lower() in {"yes", "true", "y", "t", "1", "on"}


def ast_false(value: str) -> bool:
    """main/utils.c `ast_false`: no, false, n, f, 0, off (any case)."""
    return value.strip().lower() in {"no", "false", "n", "f", "0", "off"}


def parse_variables(values: Iterable[str]) -> dict[str, str]:
    """Every ``Variable`` header: each a comma-separated list of ``NAME=value``.

    manager.c `man_do_variable_value` splits with AST_STANDARD_APP_ARGS (on commas) and skips
    an item with no ``=`` or no name; a later header's value for a name wins here.
    """
    found: dict[str, str] = {}
    for value in values:
        for item in value.strip().split(","):
            name, equals, rest = item.partition("=")
            if equals and name:
                found[name] = rest
    return found


def parse_caller_id(text: str) -> tuple[str, str]:
    """``"Name" <number>``, ``<number>``, a number or a name → (number, name), "" when absent.

    A plain-text approximation of main/callerid.c `ast_callerid_parse` and
    `ast_shrink_phone_number` (which drops ``( ) - .`` and spaces from the number).
    """
    text = text.strip()
    if "<" in text and text.endswith(">"):
        name, _, number = text[:-1].rpartition("<")
        name = name.strip().strip('"').strip()
    elif text and all(ch.isdigit() or ch in "+*#()-. " for ch in text):
        name, number = "", text
    else:
        name, number = text, ""
    number = "".join(ch for ch in number if ch not in "()-. ")
    return number, name
