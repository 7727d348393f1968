"""`PivotCall`: the flow's `ivr.flow.call.Call` over Kazoo Pivot's request and answer.

Kazoo asks; we answer with callflow JSON; the flow, though, is written as if it talked to the
caller. So the call keeps what the flow says (`play`, digits, transfers) in a buffer, and hands
it out as the answer to the pivot request in flight when the flow needs the caller: a question
(`read_digits`, `wait_for_digit`) adds `collect_dtmf` and a `pivot` back to us, and the flow
waits for the next request, which brings the `Digits`. The end of the flow adds `hangup` (or the
transfer), and the answer goes out at once.

Two clocks bound it:

* `answer_within` (3.5 s against Kazoo's 5 s request timeout, `pivot_call.erl`
  ``request_timeout_ms``): a flow still busy then (a slow backend) answers with what it has said,
  `please-wait` if that is nothing, and a `pivot` back; it runs on meanwhile and the next request
  picks up where it is. Kazoo never waits in silence.
* the idle timeout after each answer: the time Kazoo needs to play it (`play_allowance` per
  sound), the question's timeout for each key it allows, and `margin`. No request by then means the caller hung up
  (Kazoo makes no request for a call that has gone): the flow's pending question, or its
  `wait_hangup` during a backend request, raises `ChannelHangupError`, and nothing more is asked
  of any backend.

Escape keys: Kazoo cannot tell us that a key cut a sound short, so `play` and `say_digits` return
``''``; a key pressed during a sound reaches the next `collect_dtmf` as its first key
(`cf_collect_dtmf.erl`), which is where the flow reads it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

from ivr.errors import ChannelHangupError, ChannelProtocolError, TtsError
from ivr.flow.call import Entry
from ivr.logging import get_logger
from ivr.transports.pivot import _kazoo as kazoo
from ivr.tts import TtsCache, media_url

__all__ = ["ANSWER_WITHIN", "HANGUP_MARGIN", "PLAY_ALLOWANCE", "PivotBusyError", "PivotCall"]

ANSWER_WITHIN = 3.5
"""Seconds within which a pivot request is answered: Kazoo gives up at 5 s by default."""
HANGUP_MARGIN = 10.0
"""Seconds on top of an answer's own time before a call whose next request has not come is over."""
PLAY_ALLOWANCE = 5.0
"""Seconds an answer's sound is allowed to play (we do not measure our own sounds)."""

_PLEASE_WAIT = "keybox/please-wait"
_UNAVAILABLE = "keybox/system-unavailable"
_LANGUAGE = re.compile(r"[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_MAX_VARIABLES = 32
_MAX_VALUE = 256
_log = get_logger("ivr.pivot")


class PivotBusyError(Exception):
    """A second request for a call while one is being answered (Kazoo makes them one by one)."""


class PivotCall:
    """One Kazoo call, between its pivot requests.

    `media_base` is the public URL of `/media`; `voice_url(turn)` the URL Kazoo requests next
    (ours, with the secret). `tts` renders the digits of `say_digits` (the prompts have no digit
    sounds). `transfer_callflow`, when set, is the Kazoo callflow every transfer goes to,
    whatever destination the flow names; otherwise the destination is taken as a callflow id.
    """

    def __init__(
        self, call_id: str, route: str, *, caller_id: str, language: str, variables: dict[str, str],
        media_base: str, voice_url: Callable[[int], str], tts: TtsCache | None = None,
        transfer_callflow: str | None = None, answer_within: float = ANSWER_WITHIN,
        margin: float = HANGUP_MARGIN, play_allowance: float = PLAY_ALLOWANCE,
    ) -> None:
        self._call_id, self._route, self._caller_id = call_id, route, caller_id
        self._language = language
        self._variables = variables
        self._media, self._voice_url, self._tts = media_base, voice_url, tts
        self._transfer_callflow = transfer_callflow
        self.answer_within, self._margin, self._play_allowance = answer_within, margin, play_allowance
        self._modules: list[kazoo.Module] = []
        self._request: asyncio.Future[list[kazoo.Module]] | None = None  # the answer Kazoo waits for
        self._entry: asyncio.Future[str] | None = None  # the flow waits for the caller's keys
        self._asked = False  # the question went out: the next request brings its answer
        self._entry_timeout_ms = 0
        self._entry_max_digits = 0
        self._ending: str | None = None  # hangup or transfer
        self._final = False  # the flow has ended: the buffer holds the last answer
        self._gone = asyncio.Event()
        self._idle: asyncio.TimerHandle | None = None
        self._turn = 0
        self._set: dict[str, str] = {}
        self.transferred_to: str | None = None
        self.requests = 0

    # -- what the flow reads -------------------------------------------------------------

    @property
    def call_id(self) -> str:
        """Kazoo's `Call-ID`."""
        return self._call_id

    @property
    def route(self) -> str:
        return self._route

    @property
    def caller_id(self) -> str:
        return self._caller_id

    @property
    def language(self) -> str:
        return self._language

    @property
    def variables(self) -> dict[str, str]:
        """The pivot URL's own query (`?job=...`), then Kazoo's custom application variables."""
        return dict(self._variables)

    # -- what the transport reads ---------------------------------------------------------

    @property
    def hung_up(self) -> bool:
        return self._gone.is_set()

    @property
    def ended(self) -> bool:
        return self._ending is not None

    def undelivered(self) -> list[kazoo.Module] | None:
        """The last answer, when the flow ended between two requests; None once it went out."""
        return list(self._modules) if self._final and self._modules and not self.hung_up else None

    async def respond(self, params: dict[str, Any]) -> list[kazoo.Module]:
        """Answer one pivot request: the digits it brings go to the waiting question, and the
        answer is what the flow says until it needs the caller again, ends, or time runs out.
        Empty when the call is over already (a request after the idle timeout)."""
        if self._request is not None:
            raise PivotBusyError(self._call_id)
        if self.hung_up:
            return []  # too late: the call was given up; `PivotCalls` says so to Kazoo
        self.requests += 1
        self._stop_idle()
        if self._entry is not None and self._asked and not self._entry.done():
            self._entry.set_result(kazoo.digits_of(params) or "")
        request: asyncio.Future[list[kazoo.Module]] = asyncio.get_running_loop().create_future()
        self._request = request
        if self._final or (self._entry is not None and not self._asked):
            self._deliver()
        try:
            return await asyncio.wait_for(asyncio.shield(request), self.answer_within)
        except TimeoutError:
            if request.done():
                return request.result()
            return self._hold_on()
        finally:
            if self._request is request:
                self._request = None

    def mark_gone(self) -> None:
        """The caller has hung up (no request came in time): every operation raises now."""
        if self._gone.is_set():
            return
        self._gone.set()
        self._stop_idle()
        _log.info("pivot.caller_gone", turn=self._turn)
        if self._entry is not None and not self._entry.done():
            self._entry.set_exception(ChannelHangupError("no pivot request came: the caller hung up"))

    async def finish(self, timeout: float = 0.0) -> None:
        """The flow has ended. Without a hang-up or transfer of its own (cancelled, a protocol
        error) the caller hears `system-unavailable` and Kazoo hangs up. The answer goes out now
        if a request waits, else it waits for the next one (see `undelivered`)."""
        if not self._ending and not self.hung_up:
            self._queue_sound(_UNAVAILABLE, ())
            self._modules.append(kazoo.hangup())
            self._ending = "hangup"
        self._final = True
        self._stop_idle()
        self._deliver()

    # -- the Call operations ---------------------------------------------------------------

    async def answer(self) -> None:
        """Kazoo answers the call itself (`play` and `collect_dtmf` do)."""
        self._check()

    async def play(self, sound: str, escape: str = "") -> str:
        self._check()
        self._queue_sound(sound, escape)
        return ""

    async def say_digits(self, digits: str, escape: str = "") -> str:
        """A `play` per digit of its TTS render in the call's language; the digits are never logged."""
        self._check()
        if self._tts is None:
            _log.error("pivot.no_digit_sounds")
            return ""
        for digit in digits:
            if not digit.isdecimal() or not digit.isascii():
                continue
            try:
                sound = await self._tts.render(digit, self._language)
            except TtsError as exc:
                _log.error("pivot.digit_render_failed", error=str(exc))
                return ""
            self._check()
            self._queue_sound(sound, escape)
        return ""

    async def read_digits(self, sound: str, timeout_ms: int, max_digits: int) -> Entry:
        """`play` (any key cuts it short), `collect_dtmf`, `pivot` back; then the next request's
        `Digits`. Kazoo does not say whether `#` or the timeout ended an entry: only an empty one
        is known to have timed out."""
        self._check()
        url = media_url(self._media, sound, self._language)
        if url is None:
            _log.error("pivot.sound_missing", sound=sound, language=self._language)
        else:
            self._modules.append(kazoo.play_interruptible(url))
        digits = await self._ask(max_digits, timeout_ms)
        if len(digits) > max_digits:
            digits = kazoo.INVALID_ENTRY
        return Entry(digits, not digits)

    async def wait_for_digit(self, timeout_ms: int) -> str:
        self._check()
        digits = await self._ask(1, timeout_ms)
        return digits if len(digits) <= 1 else kazoo.INVALID_ENTRY

    async def set_variable(self, name: str, value: str) -> None:
        """Kept, and sent with a transfer as custom application variables (the agent's screen)."""
        self._check()
        if not _VARIABLE.fullmatch(name) or (name not in self._set and len(self._set) >= _MAX_VARIABLES):
            _log.error("pivot.bad_variable", variable=name[:64])
            return
        self._set[name] = value[:_MAX_VALUE]

    async def set_language(self, language: str) -> None:
        """Our sounds are per language: later URLs name it."""
        self._check()
        if not _LANGUAGE.fullmatch(language):
            _log.error("pivot.bad_language", language=language[:40])
            return
        self._language = language

    async def transfer(self, destination: str) -> None:
        """`set_variables` with what was set, then `callflow` to the agents' callflow."""
        self._check()
        target = self._transfer_callflow or destination
        if not target:
            raise ChannelProtocolError("no Kazoo callflow to transfer to")
        if self._set:
            self._modules.append(kazoo.set_variables(self._set))
        self._modules.append(kazoo.transfer(target))
        self._ending, self.transferred_to = "transfer", target

    async def hangup(self) -> None:
        if self._ending or self.hung_up:
            self._ending = self._ending or "hangup"
            return
        self._modules.append(kazoo.hangup())
        self._ending = "hangup"

    async def wait_hangup(self) -> None:
        """Until the caller is known gone. The flow waits on a backend meanwhile: what it said just
        before (its `please-wait`) goes out now with a pivot back, so the caller hears it while the
        backend thinks, as over FastAGI, and a caller who hangs up then is noticed a margin later."""
        request = self._request
        if self._modules and request is not None and not request.done():
            request.set_result(self._hold_on())
        await self._gone.wait()

    # -- helpers -------------------------------------------------------------------------

    def _check(self) -> None:
        if self.hung_up:
            raise ChannelHangupError("the caller hung up")
        if self._ending:
            raise ChannelHangupError(f"the call was handed on ({self._ending})")

    def _queue_sound(self, sound: str, escape: str | tuple[()]) -> None:
        url = media_url(self._media, sound, self._language)
        if url is None:
            _log.error("pivot.sound_missing", sound=sound, language=self._language)
            return
        self._modules.append(kazoo.play(url, list(escape)))

    async def _ask(self, max_digits: int, timeout_ms: int) -> str:
        self._modules += [kazoo.collect_dtmf(max_digits, timeout_ms), self._pivot_back()]
        self._entry_timeout_ms, self._entry_max_digits = timeout_ms, max_digits
        entry: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._entry = entry
        self._asked = False
        self._deliver()
        try:
            return await entry
        finally:
            self._entry = None

    def _pivot_back(self) -> kazoo.Module:
        self._turn += 1
        return kazoo.pivot(self._voice_url(self._turn))

    def _deliver(self) -> None:
        """Hand the buffer to the request in flight, if there is one."""
        request = self._request
        if request is None or request.done():
            return
        modules, self._modules = self._modules, []
        if self._entry is not None:
            self._asked = True
        if not self._final:
            self._start_idle(modules)
        request.set_result(modules)

    def _hold_on(self) -> list[kazoo.Module]:
        """The flow is busy (time is up, or it waits on a backend): what it said, `please-wait` if
        nothing, and back."""
        modules, self._modules = self._modules, []
        if not any(m["module"] == "play" for m in modules):
            url = media_url(self._media, _PLEASE_WAIT, self._language)
            if url is not None:
                modules.append(kazoo.play(url))
        modules.append(self._pivot_back())
        self._start_idle(modules)
        _log.info("pivot.please_wait", turn=self._turn)
        return modules

    def _start_idle(self, modules: list[kazoo.Module]) -> None:
        sounds = sum(1 for m in modules if m["module"] == "play")
        asks = any(m["module"] == "collect_dtmf" for m in modules)
        typing = self._entry_timeout_ms / 1000 * max(1, self._entry_max_digits) if asks else 0.0  # slowest typist
        seconds = sounds * self._play_allowance + typing + self._margin
        self._stop_idle()
        self._idle = asyncio.get_running_loop().call_later(seconds, self.mark_gone)

    def _stop_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
