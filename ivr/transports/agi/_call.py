"""`AgiCall`: the flow's `ivr.flow.call.Call` over one AGI session (FastAGI or classic AGI).

Each operation is one AGI command (two for `answer`), built by `commands` and sent on the
`AgiChannel`. What the flow must know about the mapping:

* ``200 result=-1`` from STREAM FILE, SAY DIGITS and GET DATA means a hang-up *or* a missing
  sound file. The call asks the channel (a ``HANGUP`` line seen, ``511``, end of stream, or
  ``CHANNEL STATUS``) and raises `ChannelHangupError` only when the caller is really gone; a
  missing sound is logged (``agi.sound_missing``, sound name and language) and the call goes on
  as if the sound had played to its end.
* An argument the builders refuse (a newline or NUL in text that came from a caller or a
  backend, digits that are not digits, an over-long line) never reaches Asterisk. It is logged
  (``agi.bad_argument``) and the operation is skipped as harmlessly as it can be: `play` and
  `say_digits` return ``''``, `read_digits` returns an empty timed-out `Entry`, `set_variable`
  and `set_language` do nothing. `transfer` cannot be skipped harmlessly, so it raises
  `AgiProtocolError` (a `ChannelProtocolError`, like every other way a command can fail).
* Nothing here logs what the caller typed or a code: sound and variable names only.

How the session ends: `hangup()` sends ``HANGUP``; `transfer()` sets the channel variable
``IVR_TRANSFER`` and leaves the channel up, so that when our side closes the dialplan goes on
and runs ``${IVR_TRANSFER}``. When the flow did neither, `finish()` (called by the FastAGI
server and by classic AGI after the handler) hangs up, unless the caller is already gone.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Coroutine
from typing import Any
from urllib.parse import parse_qsl

from ivr.errors import AgiProtocolError, ChannelError, ChannelHangupError
from ivr.flow.call import Entry
from ivr.logging import get_logger
from ivr.transports.agi import _commands as commands
from ivr.transports.agi._env import AgiEnvironment
from ivr.transports.agi._replies import AgiReply
from ivr.transports.agi._stream import AgiChannel

__all__ = ["FINISH_TIMEOUT", "TRANSFER_VARIABLE", "AgiCall"]

TRANSFER_VARIABLE = "IVR_TRANSFER"
"""The channel variable `transfer` sets; the dialplan after ``AGI()`` runs its value."""

FINISH_TIMEOUT = 1.0
"""How long `finish` waits for the reply to its ``HANGUP``."""

_UNKNOWN = "unknown"
_CHANNEL_UP = 6
_LANGUAGE = re.compile(r"[A-Za-z0-9_-]{1,32}")
_log = get_logger(__name__)


class AgiCall:
    """One call as the flow sees it, over an `AgiChannel` and the session's `AgiEnvironment`.

    `route` overrides the environment's route (classic AGI passes the program's argument); it
    may carry a query (``keybox?lang=fr``) like a FastAGI script.
    """

    __slots__ = ("_call_id", "_channel", "_ending", "_env", "_gone", "_language", "_query", "_route", "_watcher")

    def __init__(self, channel: AgiChannel, env: AgiEnvironment, *, route: str | None = None) -> None:
        self._channel = channel
        self._env = env
        self._call_id = env.unique_id or f"ivr-{uuid.uuid4().hex}"
        if route is None:
            self._route, self._query = env.route, env.query
        else:
            path, _, query = route.partition("?")
            self._route, self._query = path.strip("/"), dict(parse_qsl(query, keep_blank_values=True))
        self._language = env.language
        self._ending: str | None = None  # "hangup" or "transfer" once the flow ended the call
        self._gone = False  # told out of band that the caller hung up (classic AGI's SIGHUP)
        self._watcher: asyncio.Task[Any] | None = None  # the task in `wait_hangup`

    # -- what the flow reads -------------------------------------------------------------

    @property
    def call_id(self) -> str:
        """``agi_uniqueid``, or ``ivr-<random hex>`` when Asterisk sent none."""
        return self._call_id

    @property
    def route(self) -> str:
        return self._route

    @property
    def caller_id(self) -> str:
        """The calling number, or ``unknown`` when withheld."""
        return self._env.caller_id or _UNKNOWN

    @property
    def language(self) -> str:
        """``agi_language`` at first, then whatever `set_language` set."""
        return self._language

    @property
    def variables(self) -> dict[str, str]:
        """The route's query (``agi://host/keybox?lang=fr`` → ``{"lang": "fr"}``), plus every AGI
        argument not used as the route as ``argN`` (its ``agi_arg_N`` number).

        For classic AGI the first argument is the route, so its other arguments are ``arg2``,
        ``arg3``, …; for FastAGI, ``AGI(agi://host/keybox,x)`` gives ``arg1`` = ``x``.
        A query key spelled like ``argN`` loses to the argument. A new dict on every access.
        """
        variables = dict(self._query)
        first = 1 if self._env.network_script else 2
        for number, value in enumerate(self._env.args[first - 1 :], start=first):
            variables[f"arg{number}"] = value
        return variables

    # -- what the transport reads --------------------------------------------------------

    @property
    def channel(self) -> AgiChannel:
        return self._channel

    @property
    def environment(self) -> AgiEnvironment:
        return self._env

    @property
    def transferred(self) -> bool:
        """Whether `transfer` succeeded (and no `hangup` came after it)."""
        return self._ending == "transfer"

    @property
    def ended(self) -> bool:
        """Whether the flow hung up or transferred, so `finish` has nothing to do."""
        return self._ending is not None

    @property
    def hung_up(self) -> bool:
        """Whether the caller is known to be gone (no command is sent any more)."""
        return self._gone or self._channel.hung_up

    def mark_hung_up(self) -> None:
        """The transport learned out of band that the caller hung up (classic AGI's SIGHUP):
        every later operation raises `ChannelHangupError` without sending anything, and a
        `wait_hangup` in progress returns."""
        self._gone = True
        if self._watcher is not None:
            self._watcher.cancel()  # `wait_hangup` takes this cancellation back

    async def wait_hangup(self) -> None:
        """Return once the caller hangs up: Asterisk's ``HANGUP`` line, the end of the stream,
        or `mark_hung_up`. Holds the channel while it waits (see `AgiChannel.wait_hangup`):
        cancel it before the next operation."""
        if self._gone:
            return
        self._watcher = task = asyncio.current_task()
        try:
            await self._channel.wait_hangup()
        except asyncio.CancelledError:
            # mark_hung_up's cancellation, and no one else's: that is the hang-up, not an error.
            if not self._gone or task is None or task.uncancel():
                raise
        finally:
            self._watcher = None

    # -- the Call operations -------------------------------------------------------------

    async def answer(self) -> None:
        """``CHANNEL STATUS``, then ``ANSWER`` unless the channel is up (6) already."""
        status = await self._execute(commands.channel_status())
        if status.result == _CHANNEL_UP:
            return
        if status.result is not None and status.result < 0:
            raise ChannelHangupError("CHANNEL STATUS found no channel")
        reply = await self._execute(commands.answer())
        if reply.result is not None and reply.result < 0:
            await self._raise_if_gone()
            _log.warning("agi.answer_failed")

    async def play(self, sound: str, escape: str = "") -> str:
        """``STREAM FILE``: ``''`` when it played to its end (or is missing), else the escape key."""
        try:
            line = commands.stream_file(sound, escape)
        except ValueError as exc:
            _refused("play", exc, sound=sound)
            return ""
        reply = await self._execute(line)
        if reply.result is not None and reply.result < 0:
            await self._missing(sound)
            return ""
        return _key_of(reply.result)

    async def say_digits(self, digits: str, escape: str = "") -> str:
        """``SAY DIGITS``; like `play`. The digits (often a code) are never logged."""
        try:
            line = commands.say_digits(digits, escape)
        except ValueError as exc:
            _refused("say_digits", exc)
            return ""
        reply = await self._execute(line)
        if reply.result is not None and reply.result < 0:
            await self._missing("digits")
            return ""
        return _key_of(reply.result)

    async def read_digits(self, sound: str, timeout_ms: int, max_digits: int) -> Entry:
        """``GET DATA``: the digits exactly as typed (leading zeros, ``*``), and whether the
        caller stopped before `max_digits` and ``#``. A missing prompt gives ``Entry('', True)``."""
        try:
            line = commands.get_data(sound, timeout_ms, max_digits)
        except ValueError as exc:
            _refused("read_digits", exc, sound=sound)
            return Entry("", True)
        reply = await self._execute(line)
        if reply.result is not None and reply.result < 0:
            await self._missing(sound)
            return Entry("", True)
        return Entry(reply.result_text, reply.timeout)

    async def wait_for_digit(self, timeout_ms: int) -> str:
        """``WAIT FOR DIGIT``: the key pressed, ``''`` when none came within `timeout_ms`."""
        try:
            line = commands.wait_for_digit(timeout_ms)
        except ValueError as exc:
            _refused("wait_for_digit", exc)
            return ""
        reply = await self._execute(line)
        result = reply.result
        if result is not None and result < 0:
            await self._raise_if_gone()
            _log.warning("agi.wait_for_digit_failed")
            return ""
        return _key_of(result)

    async def set_variable(self, name: str, value: str) -> None:
        """``SET VARIABLE name value`` (quoted as needed). A value the builder refuses is logged
        by the variable's name only and not set."""
        try:
            line = commands.set_variable(name, value)
        except ValueError:
            _refused("set_variable", None, variable=name)
            return
        await self._execute(line)

    async def set_language(self, language: str) -> None:
        """``SET VARIABLE CHANNEL(language) <language>``; `language` then reports it."""
        if not _LANGUAGE.fullmatch(language):
            _refused("set_language", ValueError("a language is 1-32 of A-Z a-z 0-9 _ -"), language=language[:40])
            return
        await self._execute(commands.set_variable("CHANNEL(language)", language))
        self._language = language

    async def transfer(self, destination: str) -> None:
        """``SET VARIABLE IVR_TRANSFER <destination>`` and leave the channel up: when the session
        closes, the dialplan after ``AGI()`` runs ``${IVR_TRANSFER}``.

        Raises `AgiProtocolError` when the destination cannot be sent (empty, newline, …).
        """
        try:
            if not destination:
                raise ValueError("the transfer destination is empty")
            line = commands.set_variable(TRANSFER_VARIABLE, destination)
        except ValueError as exc:
            _refused("transfer", exc)
            raise AgiProtocolError(f"cannot send the transfer destination to Asterisk: {exc}") from None
        await self._execute(line)
        self._ending = "transfer"

    async def hangup(self) -> None:
        """``HANGUP``. The caller may be gone already: a hang-up error is ignored, and so is a
        refused command (the session ends right after, whatever Asterisk said)."""
        self._ending = "hangup"
        if self._gone:
            return
        try:
            await self._channel.execute(commands.hangup())
        except ChannelHangupError:
            pass
        except AgiProtocolError as exc:
            _log.warning("agi.hangup_failed", error=str(exc))

    async def finish(self, timeout: float = FINISH_TIMEOUT) -> None:
        """End our side of the session: ``HANGUP`` unless the flow hung up or transferred or
        the caller is gone. Never raises, but for `CancelledError`."""
        if self._ending is not None or self._gone or self._channel.hung_up:
            return
        self._ending = "hangup"
        try:
            await self._channel.execute(commands.hangup(), timeout=timeout)
        except (ChannelError, OSError):
            pass

    # -- helpers -------------------------------------------------------------------------

    def _execute(self, line: str) -> Coroutine[Any, Any, AgiReply]:
        # Not a coroutine itself: one coroutine object per command is enough.
        if self._gone:
            raise ChannelHangupError("the caller hung up; AGI command not sent")
        return self._channel.execute(line)

    async def _missing(self, sound: str) -> None:
        """After ``result=-1``: raise if the caller is gone, else log the missing sound."""
        await self._raise_if_gone()
        _log.error("agi.sound_missing", sound=sound, language=self._language)

    async def _raise_if_gone(self) -> None:
        if self._gone or self._channel.hung_up or not await self._channel.is_channel_alive():
            raise ChannelHangupError("the caller hung up")


def _key_of(result: int | None) -> str:
    """The key a ``result=<ASCII code>`` names; ``''`` for 0 (none) and nonsense."""
    if result is None or not 0 < result < 128:
        return ""
    return chr(result)


def _refused(operation: str, exc: ValueError | None, **fields: object) -> None:
    if exc is not None:
        fields["error"] = str(exc)
    _log.error("agi.bad_argument", operation=operation, **fields)
