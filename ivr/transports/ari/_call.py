"""`AriCall`: the flow's `ivr.flow.call.Call` over one channel in the Stasis application.

Operations are ARI REST requests; what they wait for comes as events on the application's
WebSocket, which `AriApp` hands to `handle_event` in the order Asterisk sent them. What the flow
must know about the mapping:

* `play` / `say_digits`: ``POST /channels/{id}/play/{playbackId}`` with ``lang`` and
  ``media=sound:<name>``, then wait for that playback's ``PlaybackFinished``. An escape key
  (``ChannelDtmfReceived``) heard after the playback's ``PlaybackStarted`` stops it
  (``DELETE /playbacks/{id}``) and is returned.
* `say_digits` plays one playback of a media list, one sound per digit
  (``media=sound:digits/4,sound:digits/2,…``: one parameter, comma-separated; ``*`` is
  ``digits/star``, ``#`` ``digits/pound``), never ``digits:<code>``: Asterisk's
  res_stasis_playback logs the media of a playback that fails (a hang-up during it: WARNING
  "Playback failed for …") or is stopped or cancelled (NOTICE), which with ``digits:`` put the
  whole code in its console and messages log; with the list it names one digit's sound (the
  request itself still lists every digit: ``ari set debug`` would show it). Asterisk sends
  ``PlaybackStarted`` for each media and ``PlaybackContinuing`` between two (both ignored past
  the first start), then one ``PlaybackFinished``. Being ``sound:`` media, the list can be
  stopped by an escape key (ARI cannot stop ``digits:``). A digit sound missing in the language
  is skipped (Asterisk goes on to the next media); the playback ends ``failed`` only when its
  last media failed.
* A playback that ends in state ``failed`` (Asterisk 16+) is a missing sound *or* a hang-up,
  as ``-1`` is over AGI: the call tells them apart by the hang-up events it has seen and, when
  there are none, by asking for the channel (``GET /channels/{id}``). A missing sound is logged
  (``ari.sound_missing``) and the call goes on as if it had played.
* `read_digits` works like GET DATA: keys count from the prompt's ``PlaybackStarted`` (a key
  during the prompt stops it), ``#`` ends the entry, so does `max_digits`; the timeout runs from
  the end of the prompt, then from each key; ``timed_out`` when it ran out. Keys that come when
  nothing is collecting them are dropped, as Asterisk drops keys between AGI commands.
* With `announce_input` on, the call announces that it waits for keys with a user event
  (``IvrInput``: kind, sound, max_digits, timeout_ms; ``POST /events/user/IvrInput``) before each
  question. ARI has no "collect digits" request, so this is how the simulated caller (and an AMI
  listener) tells when the IVR waits for keys. It is off by default (`IVR_ARI_ANNOUNCE_INPUT`):
  one more REST round trip per question buys a real PBX nothing.
* `transfer` sets ``IVR_TRANSFER`` and continues the channel in the dialplan at
  ``keybox-operator,s,1``, which runs ``Exec(${IVR_TRANSFER})``. `hangup` deletes the channel.
* ``ChannelHangupRequest``, ``StasisEnd`` or ``ChannelDestroyed`` mark the caller gone: every
  pending and later operation raises `ChannelHangupError`, and so does a 404/409 from ARI;
  `wait_hangup` returns.
* Nothing here logs what the caller typed, digits said, or variable values.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

from ivr.errors import AriError, ChannelError, ChannelHangupError
from ivr.flow.call import Entry
from ivr.logging import get_logger
from ivr.transports.ari._rest import AriRest

__all__ = [
    "DEFAULT_ROUTE",
    "FINISH_TIMEOUT",
    "INPUT_EVENT",
    "PLAYBACK_TIMEOUT",
    "TRANSFER_CONTEXT",
    "TRANSFER_VARIABLE",
    "AriCall",
    "digit_sounds",
]

DEFAULT_ROUTE = "keybox"
"""The route when ``Stasis(keybox)`` passes no argument."""

TRANSFER_VARIABLE = "IVR_TRANSFER"
"""The channel variable `transfer` sets; the dialplan at `TRANSFER_CONTEXT` runs its value."""

TRANSFER_CONTEXT = "keybox-operator"
TRANSFER_EXTENSION = "s"
TRANSFER_PRIORITY = 1

INPUT_EVENT = "IvrInput"
"""The user event announcing that the call waits for the caller's keys."""

FINISH_TIMEOUT = 1.0
"""How long `finish` waits for ARI to hang up a channel the flow left up."""

PLAYBACK_TIMEOUT = 300.0
"""The longest a playback is waited for (its PlaybackFinished may be lost in an outage)."""

STOP_WAIT = 2.0
"""After stopping a playback, how long to wait for its PlaybackFinished before going on."""

DEFAULT_ENTRY_MS = 6000  # GET DATA's wait for the first key when its timeout is 0

_UNKNOWN = "unknown"
_DTMF = frozenset("0123456789*#ABCD")
_LANGUAGE = re.compile(r"[A-Za-z0-9_-]{1,32}")
_SOUND = re.compile(r"[^\s,\x00-\x1f\x7f]{1,255}")  # a comma would make ARI play two media
_DIGITS = re.compile(r"[0-9*#]{1,100}")  # 100 media: within ARI's 127 per play request
_DIGIT_SOUNDS = {"*": "star", "#": "pound"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_log = get_logger("ivr.ari")


class AriCall:
    """One call as the flow sees it: the channel snapshot and arguments of its ``StasisStart``.

    The route is the first Stasis argument (``Stasis(keybox,identify)``; ``keybox`` when there is
    none), and may carry a query like a FastAGI script (``announce?job=42``).
    """

    def __init__(
        self,
        rest: AriRest,
        app: str,
        channel: Mapping[str, Any],
        args: Sequence[str] = (),
        *,
        announce_input: bool = False,
        playback_timeout: float = PLAYBACK_TIMEOUT,
    ) -> None:
        self._rest = rest
        self._app = app
        self._id = str(channel.get("id") or f"ivr-{uuid.uuid4().hex}")
        caller = channel.get("caller")
        number = caller.get("number") if isinstance(caller, Mapping) else None
        self._caller_id = str(number) if number else _UNKNOWN
        self._language = str(channel.get("language") or "en")
        self._state = str(channel.get("state") or "")
        args = [str(arg) for arg in args]
        path, _, query = (args[0] if args else "").partition("?")
        self._route = path.strip().strip("/") or DEFAULT_ROUTE
        self._query = dict(parse_qsl(query, keep_blank_values=True))
        self._args = args[1:]
        self._announce_input = announce_input
        self._playback_timeout = playback_timeout

        self._wake = asyncio.Event()
        self._gone: str | None = None  # why the channel is no longer ours
        self._gone_event = asyncio.Event()
        self._ending: str | None = None  # "hangup" or "transfer" once the flow ended the call
        self._waiting: str | None = None  # the playback an operation waits for
        self._finished: dict[str, str] = {}  # its final state, once known
        self._collect_from: str | None = None  # keys count once this playback started
        self._collecting = False
        self._keys: deque[str] = deque()

    # -- what the flow reads -----------------------------------------------------------------

    @property
    def call_id(self) -> str:
        """The channel id (Asterisk's unique id of the channel)."""
        return self._id

    @property
    def route(self) -> str:
        return self._route

    @property
    def caller_id(self) -> str:
        """The channel's caller number, or ``unknown``."""
        return self._caller_id

    @property
    def language(self) -> str:
        """The channel's language at ``StasisStart``, then whatever `set_language` set."""
        return self._language

    @property
    def variables(self) -> dict[str, str]:
        """The route's query, plus every other Stasis argument as ``argN`` (its position:
        ``Stasis(keybox,identify,x)`` gives ``arg2`` = ``x``, as classic AGI numbers them)."""
        variables = dict(self._query)
        for number, value in enumerate(self._args, start=2):
            variables[f"arg{number}"] = value
        return variables

    # -- what the transport reads ----------------------------------------------------------

    @property
    def hung_up(self) -> bool:
        """Whether the channel is known to be gone or out of the application."""
        return self._gone is not None

    @property
    def ended(self) -> bool:
        """Whether the flow hung up or transferred."""
        return self._ending is not None

    @property
    def transferred(self) -> bool:
        return self._ending == "transfer"

    def handle_event(self, event: Mapping[str, Any]) -> None:
        """Take one event about this channel (in Asterisk's order; never blocks)."""
        kind = event.get("type")
        if kind == "ChannelDtmfReceived":
            digit = str(event.get("digit") or "")
            if self._collecting and digit in _DTMF:
                self._keys.append(digit)
                self._wake.set()
        elif kind == "PlaybackStarted":
            if self._collect_from is not None and _playback_id(event) == self._collect_from:
                self._collecting = True
                self._wake.set()
        elif kind == "PlaybackFinished":
            playback_id = _playback_id(event)
            if playback_id is not None and playback_id == self._waiting:
                playback = event.get("playback")
                state = playback.get("state") if isinstance(playback, Mapping) else None
                self._finished[playback_id] = str(state or "done")
                self._wake.set()
        elif kind in ("ChannelHangupRequest", "StasisEnd", "ChannelDestroyed"):
            self._mark_gone(str(kind))
        elif kind == "ChannelStateChange":
            channel = event.get("channel")
            if isinstance(channel, Mapping) and channel.get("state"):
                self._state = str(channel["state"])

    async def resync(self) -> None:
        """After the WebSocket came back: learn what the events lost meanwhile would have said.

        A channel that no longer exists (or has left Stasis) is gone; a playback being waited
        for that ARI no longer knows has finished. Keys pressed during the outage are lost.
        """
        if self._gone is not None:
            return
        try:
            channel = await self._rest.get_channel(self._id)
        except ChannelError as exc:
            _log.warning("ari.resync_failed", error=str(exc))
            return
        dialplan = channel.get("dialplan") if channel is not None else None
        app_name = dialplan.get("app_name") if isinstance(dialplan, Mapping) else None
        if channel is None or (app_name and app_name != "Stasis"):
            self._mark_gone("gone while the WebSocket was down")
            return
        if channel.get("state"):
            self._state = str(channel["state"])
        playback_id = self._waiting
        if playback_id is None or playback_id in self._finished:
            return
        try:
            playback = await self._rest.get_playback(playback_id)
        except ChannelError as exc:
            _log.warning("ari.resync_failed", error=str(exc))
            return
        if self._waiting != playback_id or playback_id in self._finished:
            return
        if playback is None:
            _log.info("ari.playback_ended_unseen")  # its PlaybackFinished was lost with the socket
            self._finished[playback_id] = "done"
        elif playback.get("state") == "playing" and playback_id == self._collect_from:
            self._collecting = True
        self._wake.set()

    # -- the Call operations -----------------------------------------------------------------

    async def answer(self) -> None:
        """``POST /channels/{id}/answer`` unless the channel is up already."""
        self._check_alive()
        if self._state == "Up":
            return
        await self._rest.answer(self._id)
        self._state = "Up"

    async def play(self, sound: str, escape: str = "") -> str:
        """Play ``sound:<sound>``: ``''`` when it played to its end (or is missing), else the
        escape key that stopped it."""
        if not _SOUND.fullmatch(sound):
            _refused("play", "not a sound name", sound=sound[:80])
            return ""
        return await self._playback(f"sound:{sound}", sound, escape)

    async def say_digits(self, digits: str, escape: str = "") -> str:
        """Say `digits` in the channel's language, one ``sound:digits/<d>`` per digit in one
        playback (see the module's notes); like `play`. Never logged."""
        if not _DIGITS.fullmatch(digits):
            _refused("say_digits", "digits are 1 to 100 of 0-9 * #")
            return ""
        return await self._playback(digit_sounds(digits), "digits", escape)

    async def read_digits(self, sound: str, timeout_ms: int, max_digits: int) -> Entry:
        """Play `sound` and collect up to `max_digits` keys, GET DATA's way. A missing prompt
        gives ``Entry('', True)`` at once (as over AGI)."""
        if not _SOUND.fullmatch(sound) or max_digits < 1:
            _refused("read_digits", "not a sound name, or max_digits below 1", sound=sound[:80])
            return Entry("", True)
        self._check_alive()
        wait = (timeout_ms if timeout_ms > 0 else DEFAULT_ENTRY_MS) / 1000
        await self._announce("get_data", sound, max_digits, timeout_ms)
        playback_id = _new_id()
        self._keys.clear()
        self._collect_from, self._collecting = playback_id, False
        self._waiting = playback_id
        try:
            await self._rest.play(self._id, playback_id, f"sound:{sound}", self._language)
            state = await self._until(lambda: bool(self._keys) or playback_id in self._finished,
                                      self._playback_timeout)
            if self._keys:
                if playback_id not in self._finished:
                    await self._stop(playback_id)  # the first key cuts the prompt short
            elif self._finished.get(playback_id) == "failed":
                await self._missing(sound)
                return Entry("", True)
            elif not state:
                _log.warning("ari.playback_timeout", sound=sound)
            self._waiting = None
            self._collecting = True  # from the end of the prompt, even if its start was lost
            digits = ""
            while True:
                while self._keys:
                    key = self._keys.popleft()
                    if key == "#":
                        return Entry(digits, False)
                    digits += key
                    if len(digits) >= max_digits:
                        return Entry(digits, False)
                if not await self._until(lambda: bool(self._keys), wait):
                    return Entry(digits, True)
        finally:
            self._end_collecting(playback_id)

    async def wait_for_digit(self, timeout_ms: int) -> str:
        """One key within `timeout_ms` (negative: for ever), ``''`` when none came."""
        self._check_alive()
        self._keys.clear()
        self._collect_from, self._collecting = None, True
        try:
            await self._announce("wait_for_digit", "", 1, timeout_ms)
            if await self._until(lambda: bool(self._keys), timeout_ms / 1000 if timeout_ms >= 0 else None):
                return self._keys.popleft()
            return ""
        finally:
            self._end_collecting(None)

    async def set_variable(self, name: str, value: str) -> None:
        """``POST /channels/{id}/variable``; a name or value with control characters is logged
        by the name only and not set."""
        if not name or _CONTROL.search(name) or _CONTROL.search(value):
            _refused("set_variable", "control characters", variable=name[:80])
            return
        self._check_alive()
        await self._rest.set_variable(self._id, name, value)

    async def set_language(self, language: str) -> None:
        """Set ``CHANNEL(language)``; `language` and later playbacks use it."""
        if not _LANGUAGE.fullmatch(language):
            _refused("set_language", "a language is 1-32 of A-Z a-z 0-9 _ -", language=language[:40])
            return
        self._check_alive()
        await self._rest.set_variable(self._id, "CHANNEL(language)", language)
        self._language = language

    async def transfer(self, destination: str) -> None:
        """Set ``IVR_TRANSFER`` and continue at ``keybox-operator,s,1``, whose dialplan runs
        ``Exec(${IVR_TRANSFER})``. Raises `AriError` when the destination cannot be sent."""
        if not destination or _CONTROL.search(destination):
            _refused("transfer", "empty, or control characters")
            raise AriError("cannot send the transfer destination to Asterisk: empty or control characters")
        self._check_alive()
        await self._rest.set_variable(self._id, TRANSFER_VARIABLE, destination)
        await self._rest.continue_in_dialplan(self._id, TRANSFER_CONTEXT, TRANSFER_EXTENSION, TRANSFER_PRIORITY)
        self._ending = "transfer"

    async def hangup(self) -> None:
        """``DELETE /channels/{id}``; a caller already gone, or an ARI error, is not raised."""
        self._ending = "hangup"
        if self._gone is not None:
            return
        try:
            await self._rest.hangup(self._id)
        except ChannelHangupError:
            pass
        except AriError as exc:
            _log.warning("ari.hangup_failed", error=str(exc))

    async def wait_hangup(self) -> None:
        """Return once the channel is gone (its hang-up, ``StasisEnd`` or destruction events, or
        ARI saying so); other operations may run meanwhile."""
        await self._gone_event.wait()

    async def finish(self, timeout: float = FINISH_TIMEOUT) -> None:
        """After the flow: hang up unless it hung up or transferred or the caller is gone (a
        channel left in Stasis would stay there, silent). Never raises but `CancelledError`."""
        if self._ending is not None or self._gone is not None:
            return
        self._ending = "hangup"
        try:
            async with asyncio.timeout(timeout):
                await self._rest.hangup(self._id)
        except (ChannelError, TimeoutError):
            pass

    # -- helpers ---------------------------------------------------------------------------

    async def _playback(self, media: str | list[str], name: str, escape: str) -> str:
        self._check_alive()
        escape = "".join(key for key in escape if key in _DTMF)
        playback_id = _new_id()
        self._keys.clear()
        self._collect_from, self._collecting = (playback_id if escape else None), False
        self._waiting = playback_id
        try:
            await self._rest.play(self._id, playback_id, media, self._language)
            while True:
                finished = await self._until(lambda: bool(self._keys) or playback_id in self._finished,
                                             self._playback_timeout)
                while self._keys:
                    key = self._keys.popleft()
                    if key in escape:
                        if playback_id not in self._finished:
                            stopped = await self._stop(playback_id)
                            await self._until(lambda: playback_id in self._finished,
                                              STOP_WAIT if stopped else self._playback_timeout)
                        return key
                if playback_id in self._finished:
                    if self._finished[playback_id] == "failed":
                        await self._missing(name)
                    return ""
                if not finished:
                    _log.warning("ari.playback_timeout", sound=name)
                    await self._stop(playback_id)
                    return ""
        finally:
            self._end_collecting(playback_id)

    async def _until(self, ready: Callable[[], bool], timeout: float | None) -> bool:
        """Wait until `ready()` (checked at each event); False when `timeout` passed first.
        Raises `ChannelHangupError` as soon as the channel is gone."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            self._check_alive()
            if ready():
                return True
            self._wake.clear()
            try:
                async with asyncio.timeout_at(deadline):
                    await self._wake.wait()
            except TimeoutError:
                self._check_alive()
                return bool(ready())

    async def _stop(self, playback_id: str) -> bool:
        try:
            return await self._rest.stop_playback(playback_id)
        except AriError as exc:
            _log.warning("ari.stop_failed", error=str(exc))
            return False

    async def _announce(self, kind: str, sound: str, max_digits: int, timeout_ms: int) -> None:
        if not self._announce_input:
            return
        variables = {"kind": kind, "sound": sound, "max_digits": str(max_digits), "timeout_ms": str(timeout_ms)}
        try:
            await self._rest.user_event(INPUT_EVENT, self._app, self._id, variables)
        except AriError as exc:
            _log.warning("ari.input_event_failed", error=str(exc))

    async def _missing(self, sound: str) -> None:
        """After a ``failed`` playback: raise if the caller is gone, else log the missing sound."""
        self._check_alive()
        channel = await self._rest.get_channel(self._id)
        if channel is None:
            self._mark_gone("channel not found")
        self._check_alive()
        _log.error("ari.sound_missing", sound=sound, language=self._language)

    def _end_collecting(self, playback_id: str | None) -> None:
        self._collecting = False
        self._collect_from = None
        self._keys.clear()
        self._waiting = None
        if playback_id is not None:
            self._finished.pop(playback_id, None)

    def _mark_gone(self, reason: str) -> None:
        if self._gone is None:
            self._gone = reason
        self._wake.set()
        self._gone_event.set()

    def _check_alive(self) -> None:
        if self._gone is not None:
            raise ChannelHangupError(f"the caller hung up ({self._gone})")


def digit_sounds(digits: str) -> list[str]:
    """The media list that says `digits` (0-9 * #): ``sound:digits/<d>`` each, ``*`` being
    ``digits/star`` and ``#`` ``digits/pound``, the files ``digits:`` media and SAY DIGITS play
    (main/say.c, ast_get_digit_str)."""
    return [f"sound:digits/{_DIGIT_SOUNDS.get(digit, digit)}" for digit in digits]


def _playback_id(event: Mapping[str, Any]) -> str | None:
    playback = event.get("playback")
    playback_id = playback.get("id") if isinstance(playback, Mapping) else None
    return str(playback_id) if playback_id else None


def _new_id() -> str:
    return f"ivr-{uuid.uuid4().hex}"


def _refused(operation: str, reason: str, **fields: object) -> None:
    _log.error("ari.bad_argument", operation=operation, error=reason, **fields)
