"""`PivotCalls`: the suspended flows of Kazoo calls, by `Call-ID`, bounded.

A first request (no `Digits`, no `turn` of ours) for a new `Call-ID` starts a flow. Past
`max_calls` flows in progress the handler is the one to refuse the call (the service's does, as
over FastAGI: `system-unavailable`, an agent or goodbye, and a record); such a flow asks nothing
of the caller and ends within its first answer. Past twice `max_calls` (a flood), while draining,
for a `Call-ID` whose flow has ended (reused), or for a resumed request we know nothing of (the
service restarted under it), Kazoo gets a polite `system-unavailable` and `hangup`, and no flow
starts. Each call also ends on its own when Kazoo stops asking (`PivotCall`'s idle timeout), so a
flood of made-up `Call-ID`s holds at most twice `max_calls` flows, each for a bounded time.
Ended `Call-ID`s are remembered (at most `remember`), with the last answer when the flow ended
between two requests.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlencode

from ivr.logging import ThrottledWarning, get_logger
from ivr.sessions import CallSessions
from ivr.transports.pivot import _kazoo as kazoo
from ivr.transports.pivot._call import ANSWER_WITHIN, HANGUP_MARGIN, PLAY_ALLOWANCE, PivotCall
from ivr.tts import TtsCache, media_url

__all__ = ["PivotCallHandler", "PivotCalls"]

PivotCallHandler = Callable[[PivotCall], Awaitable[object]]

TURN = "turn"
"""Our query parameter on every pivot back: a request with it continues a call."""

_log = get_logger("ivr.pivot")
_refused = ThrottledWarning(_log, "pivot.refused", every=10.0)  # Kazoo (or a flood) may repeat it


class PivotCalls:
    """The Kazoo calls in progress, each a flow run by `handler` in a task of its own."""

    def __init__(
        self, handler: PivotCallHandler, *, public_url: str | Callable[[], str], secret: str = "",
        tts: TtsCache | None = None,
        max_calls: int = 100, transfer_callflow: str | None = None, answer_within: float = ANSWER_WITHIN,
        hangup_margin: float = HANGUP_MARGIN, play_allowance: float = PLAY_ALLOWANCE, remember: int = 10_000,
    ) -> None:
        self._handler = handler
        self._public_url = public_url
        self._secret = secret
        self._tts = tts
        self._max_calls = max_calls
        self._transfer_callflow = transfer_callflow
        self._answer_within, self._margin, self._play_allowance = answer_within, hangup_margin, play_allowance
        self._remember = remember
        self._calls: dict[str, PivotCall] = {}
        self._ended: OrderedDict[str, list[kazoo.Module] | None] = OrderedDict()
        self._done: dict[str, asyncio.Event] = {}
        self._sessions = CallSessions("pivot")
        self._draining = False

    @property
    def _base(self) -> str:
        """The service's base URL as Kazoo reaches it; a callable is asked each time (the port
        of a listener on port 0 is known only once it listens)."""
        url = self._public_url() if callable(self._public_url) else self._public_url
        return url.rstrip("/")

    @property
    def active(self) -> int:
        """Flows in progress (suspended or running)."""
        return self._sessions.active

    def call(self, call_id: str) -> PivotCall | None:
        return self._calls.get(call_id)

    async def request(
        self, route: str, params: dict[str, Any], variables: dict[str, str], *, resumed: bool,
    ) -> list[kazoo.Module]:
        """The answer to one pivot request (`params`: Kazoo's, `Call-ID` checked by the caller)."""
        call_id = str(params["Call-ID"])
        language = _language(params.get("Language"))
        call = self._calls.get(call_id)
        if call is None:
            if call_id in self._ended:
                last = self._ended[call_id]
                self._ended[call_id] = None  # the last answer goes out once
                if last is None:
                    _refused.note(reason="ended")
                return last or self._refusal(language)
            reason = ("resumed" if resumed else "draining" if self._draining
                      else "full" if len(self._calls) >= 2 * self._max_calls else None)
            if reason is not None:
                _refused.note(reason=reason)
                if reason != "resumed":
                    self._forget_later(call_id, None)
                return self._refusal(language)
            call = self._start(call_id, route, params, variables, language)
        return await call.respond(params) or self._refusal(language)

    def abandoned(self, call_id: str) -> None:
        """Kazoo dropped a request of `call_id` before its answer: the caller has gone."""
        call = self._calls.get(call_id)
        if call is not None:
            call.mark_gone()

    async def wait_call(self, call_id: str, timeout: float) -> None:
        """Until the flow of `call_id` has ended (its record kept); at once if it is not running."""
        done = self._done.get(call_id)
        if done is not None:
            async with asyncio.timeout(timeout):
                await done.wait()

    async def drain(self, grace: float) -> None:
        """No new calls; flows in progress end within `grace` seconds, then are cancelled: each is
        recorded, and Kazoo's next request for it gets `system-unavailable` and `hangup`."""
        self._draining = True
        await self._sessions.drain(grace)

    # -- helpers -------------------------------------------------------------------------

    def _start(
        self, call_id: str, route: str, params: dict[str, Any], variables: dict[str, str], language: str,
    ) -> PivotCall:
        caller = str(params.get("Caller-ID-Number") or "")[:64] or "unknown"
        call = PivotCall(
            call_id, route, caller_id=caller, language=language,
            variables={**kazoo.custom_vars(params), **variables},
            media_base=f"{self._base}/media", voice_url=lambda turn: self._voice_url(route, turn), tts=self._tts,
            transfer_callflow=self._transfer_callflow, answer_within=self._answer_within, margin=self._margin,
            play_allowance=self._play_allowance,
        )
        self._calls[call_id] = call
        self._done[call_id] = asyncio.Event()
        self._sessions.start(self._session(call))
        return call

    async def _session(self, call: PivotCall) -> None:
        try:
            with self._sessions.boundary():
                await self._sessions.run(call, self._handler, 0.0)
        finally:
            self._calls.pop(call.call_id, None)
            self._forget_later(call.call_id, call.undelivered())
            done = self._done.pop(call.call_id, None)
            if done is not None:
                done.set()

    def _forget_later(self, call_id: str, last: list[kazoo.Module] | None) -> None:
        self._ended[call_id] = last
        self._ended.move_to_end(call_id)
        while len(self._ended) > self._remember:
            self._ended.popitem(last=False)

    def _voice_url(self, route: str, turn: int) -> str:
        query = {**({"secret": self._secret} if self._secret else {}), TURN: str(turn)}
        return f"{self._base}/kazoo/pivot/{quote(route, safe='')}?{urlencode(query)}"

    def _refusal(self, language: str) -> list[kazoo.Module]:
        url = media_url(f"{self._base}/media", "keybox/system-unavailable", language)
        return [*([kazoo.play(url)] if url else []), kazoo.hangup()]


def _language(value: object) -> str:
    """Kazoo's `Language` (`en-us`, `fr-ca`) as our sounds name it (`en`, `fr`); `en` by default."""
    primary = str(value or "").strip().lower().replace("_", "-").partition("-")[0]
    return primary if primary.isascii() and primary.isalpha() and 2 <= len(primary) <= 3 else "en"
