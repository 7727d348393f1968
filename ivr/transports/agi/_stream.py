"""AGI over asyncio streams: a FastAGI socket, or classic AGI's stdin/stdout.

AGI is strictly one command, one reply, in order, with nothing to match a reply to its
command. So once a reply is lost — a timeout, a cancelled command, a line we cannot parse —
the next reply read would belong to the previous command; the channel then refuses every
further command instead of answering with someone else's reply.

Between commands Asterisk writes nothing but the ``HANGUP`` line (run_agi, as soon as the
channel hangs up), and closing the stream. `wait_hangup` reads for them while the flow waits
for something else (a backend), holding the command lock so that it never reads a reply.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Protocol

from ivr.errors import AgiProtocolError, ChannelHangupError
from ivr.transports.agi._commands import MAX_COMMAND_BYTES, channel_status
from ivr.transports.agi._env import AgiEnvironment
from ivr.transports.agi._replies import AgiReply, Hangup, ReplyParser

__all__ = [
    "COMMAND_TIMEOUT",
    "ENVIRONMENT_TIMEOUT",
    "HANGUP_GRACE",
    "LINE_LIMIT",
    "AgiChannel",
    "AgiWriter",
    "read_environment",
]

LINE_LIMIT = 8192
"""The `limit` to give `asyncio.start_server` / `StreamReader`: the longest line we accept.

res_agi.c's own replies fit in its 2048-byte command buffer; GET VARIABLE values in 1024 bytes.
"""

ENVIRONMENT_TIMEOUT = 2.0
"""Asterisk writes the whole environment as soon as it connects; waiting longer is pointless
(``IVR_AGI_ENV_TIMEOUT`` for FastAGI)."""

COMMAND_TIMEOUT = 120.0
"""The default bound on one command: the longest prompt or GET DATA the flow plays, and then some."""

HANGUP_GRACE = 1.0
"""How long the reply may trail a ``HANGUP`` line. Asterisk sends ``HANGUP`` between commands,
so a command read after it runs in dead mode and is answered at once (often ``511``)."""

_MAX_ENVIRONMENT_LINES = 512
_MAX_ENVIRONMENT_BYTES = 64 * 1024


class AgiWriter(Protocol):
    """What `AgiChannel` writes to: an `asyncio.StreamWriter` or anything shaped like one."""

    def write(self, data: bytes) -> None: ...

    def drain(self) -> Awaitable[None]: ...

    def close(self) -> None: ...


async def read_environment(
    reader: asyncio.StreamReader, *, timeout: float = ENVIRONMENT_TIMEOUT
) -> AgiEnvironment:
    """Read the ``agi_*`` lines up to the blank line that ends them.

    Raises `AgiProtocolError` when the peer closes first, stays silent past `timeout`, or sends
    more than an environment can hold (512 lines, 64 KiB, or one line past the reader's limit).
    """
    lines: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            while True:
                line = await reader.readuntil(b"\n")
                if not line.rstrip(b"\r\n"):
                    break
                lines.append(line)
                size += len(line)
                if len(lines) > _MAX_ENVIRONMENT_LINES or size > _MAX_ENVIRONMENT_BYTES:
                    raise AgiProtocolError("the AGI environment is too large")
    except TimeoutError:
        raise AgiProtocolError(f"no complete AGI environment within {timeout:g} s") from None
    except asyncio.IncompleteReadError:
        raise AgiProtocolError(f"the peer closed after {len(lines)} AGI environment lines") from None
    except asyncio.LimitOverrunError:
        raise AgiProtocolError("an AGI environment line is too long") from None
    except ConnectionError as exc:
        raise AgiProtocolError(f"the connection failed while reading the AGI environment: {exc!r}") from exc
    return AgiEnvironment.from_lines(lines)


class AgiChannel:
    """Sends AGI commands and reads their replies, one at a time.

    `execute` returns ``200`` replies, ``200 result=-1`` included: Asterisk answers a missing
    sound file exactly like a hang-up, and only the caller can tell the two apart (see
    `is_channel_alive`). It raises `ChannelHangupError` when the channel is known to be gone
    (``HANGUP`` line with no reply, ``511``, end of stream) and `AgiProtocolError` for refused
    commands (510, 520, 503), replies that never come, and lines Asterisk does not send.
    Commands are serialised: concurrent callers wait their turn.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: AgiWriter,
        *,
        command_timeout: float = COMMAND_TIMEOUT,
        hangup_grace: float = HANGUP_GRACE,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._command_timeout = command_timeout
        self._hangup_grace = hangup_grace
        self._parser = ReplyParser()
        self._lock = asyncio.Lock()
        self._hung_up = False
        self._out_of_step: str | None = None

    @property
    def hung_up(self) -> bool:
        """Whether Asterisk said the channel is gone (``HANGUP``, ``511``) or the stream ended."""
        return self._hung_up

    async def execute(self, command_line: str, *, timeout: float | None = None) -> AgiReply:
        """Send one command line (no newline) and return its ``200`` reply.

        `timeout` (default: the channel's `command_timeout`) bounds the whole exchange.
        Raises `ValueError`, before writing anything, for a line holding a newline, carriage
        return or NUL, or longer than Asterisk reads at once.
        """
        data = _encode(command_line)
        async with self._lock:
            if self._hung_up:
                raise ChannelHangupError("the channel has hung up; AGI command not sent")
            if self._out_of_step is not None:
                raise AgiProtocolError(f"AGI replies are out of step after {self._out_of_step}; command not sent")
            in_step = False
            try:
                reply = await self._exchange(data, self._command_timeout if timeout is None else timeout)
                in_step = True
            finally:
                if not in_step and not self._hung_up and self._out_of_step is None:
                    self._out_of_step = "an interrupted command"
        return _checked(reply)

    async def is_channel_alive(self) -> bool:
        """Ask Asterisk (``CHANNEL STATUS``) whether the caller is still there.

        False after a ``HANGUP`` line, ``511`` or end of stream, or for ``result=-1``; this is
        how a ``200 result=-1`` from STREAM FILE or GET DATA is told apart from a missing sound.
        """
        try:
            reply = await self.execute(channel_status())
        except ChannelHangupError:
            return False
        return not self._hung_up and reply.result is not None and reply.result >= 0

    async def wait_hangup(self) -> None:
        """Return once the channel is gone: a ``HANGUP`` line, end of stream, or known already.

        For the time no command runs: it holds the command lock, so `execute` waits until it is
        cancelled. Cancelling it loses nothing (a partly read line stays in the reader's buffer).
        Raises `AgiProtocolError` for any other line, which Asterisk never sends unasked.
        """
        async with self._lock:
            while not self._hung_up:
                try:
                    event = self._parser.feed(await self._reader.readuntil(b"\n"))
                except (asyncio.IncompleteReadError, ConnectionError):
                    self._hung_up = True
                    return
                except asyncio.LimitOverrunError:
                    self._out_of_step = self._out_of_step or "an over-long line"
                    raise AgiProtocolError("Asterisk sent a line longer than the reader's limit") from None
                except AgiProtocolError:
                    self._out_of_step = self._out_of_step or "an unreadable line"
                    raise
                if isinstance(event, Hangup):
                    self._hung_up = True
                elif event is not None and self._out_of_step is None:  # out of step: a late reply
                    self._out_of_step = "a reply to no command"
                    raise AgiProtocolError("Asterisk sent a reply while no command was pending")

    def close(self) -> None:
        """Close the stream; after a hang-up Asterisk waits for us to do so."""
        self._writer.close()

    async def _exchange(self, data: bytes, timeout: float) -> AgiReply:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        hung_up_before_reply = False
        try:
            async with asyncio.timeout_at(deadline) as scope:
                self._writer.write(data)
                await self._writer.drain()
                while True:
                    event = self._parser.feed(await self._reader.readuntil(b"\n"))
                    if isinstance(event, Hangup):
                        self._hung_up = hung_up_before_reply = True
                        scope.reschedule(min(deadline, loop.time() + self._hangup_grace))
                    elif event is not None:
                        self._hung_up = self._hung_up or event.code == 511
                        return event
        except TimeoutError:
            if hung_up_before_reply:
                raise ChannelHangupError("the channel hung up and the AGI command got no reply") from None
            self._out_of_step = "a reply timeout"
            raise AgiProtocolError(f"no AGI reply within {timeout:g} s") from None
        except asyncio.IncompleteReadError:
            self._hung_up = True
            raise ChannelHangupError("the AGI stream ended before the reply") from None
        except ConnectionError as exc:
            self._hung_up = True
            raise ChannelHangupError(f"the AGI connection failed: {exc!r}") from exc
        except asyncio.LimitOverrunError:
            self._out_of_step = "an over-long line"
            raise AgiProtocolError("Asterisk sent a line longer than the reader's limit") from None
        except AgiProtocolError:
            self._out_of_step = "an unreadable line"
            raise


def _checked(reply: AgiReply) -> AgiReply:
    if reply.code == 200:
        return reply
    if reply.code == 511:
        raise ChannelHangupError(f"Asterisk refused the AGI command on a dead channel: {reply.data}")
    first_line = reply.raw.partition("\n")[0]
    raise AgiProtocolError(f"Asterisk refused the AGI command: {first_line}", reply)


def _encode(command_line: str) -> bytes:
    # The builders check this too; this guards lines built by hand.
    if any(char in command_line for char in "\r\n\x00"):
        raise ValueError("an AGI command line may not hold a newline, carriage return or NUL")
    data = command_line.encode("utf-8")
    if not data or len(data) > MAX_COMMAND_BYTES:
        raise ValueError(f"an AGI command line must be 1..{MAX_COMMAND_BYTES} bytes, got {len(data)}")
    return data + b"\n"
