"""A `Call` held in memory: the flow's tests without a transport, a socket or a clock.

`MemoryCall` implements every member of the `Call` protocol (`ivr/flow/call.py`) the way a
transport presents a call, and plays the caller from a script in the simulator's notation
(`ivr.sim.ScriptedCaller`: DTMF keys consumed question by question, `#` ends an entry, `_` the
caller falls silent, `!` they hang up)::

    call = MemoryCall("123456#2580#" "1" "9")
    record = await run_call(call, services)
    assert call.heard == ["answer", "prompt:welcome", "prompt:enter-key-number", "pressed:123456#", ...]

What the caller heard is `call.transcript` (the simulator's `Transcript`: `prompts`, `said_digits`,
`spoken`, `variables`, `transferred_to`, `hung_up_by`), and `call.heard` the same events one
short line each, for exact comparisons.

The rules, as Asterisk applies them (and the simulator copies):

* A question (`read_digits`) plays its prompt whole, then takes the caller's next keys: up to
  `#`, `max_digits` keys or a `_`; the entry is the keys before `#`, and it timed out unless `#`
  or `max_digits` ended it. `wait_for_digit` takes one key. An empty script is silence for ever.
* A sound or `say_digits` plays whole unless the caller presses during it: `barge_in` lists
  (what is heard, key) pairs, each used once, the first time that event is heard, e.g.
  ``(Event("tts", "Bob"), "2")``. A key among the escape digits cuts the sound short and is
  returned; any other is lost (a note says so).
* `hangup_on` (as `ScriptedCaller`'s: a prompt id, `digits` or `tts`) hangs up while that sound
  plays; `hang_up()` hangs up at once, from a test (while a backend request is in flight, say):
  `wait_hangup` returns, and every later operation raises `ChannelHangupError`.
* `on_event` is told every event as it is heard: a test can let a backend answer once the
  caller has heard `please-wait`, with no clock involved.
* With a `catalog`, a prompt without a text in the channel's language is missing, as on a real
  Asterisk: heard as `missing:keybox/<id>`, skipped.

Nothing here sleeps: a timeout is the script's `_`, not time passing. A flow that breaks the
protocol (an operation while `wait_hangup` runs, anything after `transfer` or its own `hangup`)
leaves a line in `call.transcript.notes`; the first raises `AssertionError`.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterable, Mapping

from ivr.catalog import PromptCatalog
from ivr.errors import ChannelHangupError
from ivr.flow.call import Entry
from ivr.sim import Event, InputRequest, ScriptedCaller, Transcript, typed_entry
from ivr.tts import SOUND_PREFIX

__all__ = ["PROMPT_PREFIX", "TTS_PREFIX", "MemoryCall"]

PROMPT_PREFIX = "keybox/"
"""Fixed prompts are the sounds `keybox/<prompt-id>`."""
TTS_PREFIX = SOUND_PREFIX
"""TTS renders are the sounds `tts/<hash>` (`ivr.tts.TtsCache.render`)."""

_ids = itertools.count(1)


class MemoryCall:
    """One call in memory, its caller scripted; see the module's docstring for the rules."""

    def __init__(
        self,
        keys: str = "",
        *,
        route: str = "keybox",
        caller_id: str = "+15555550100",
        language: str = "en",
        variables: Mapping[str, str] | None = None,
        call_id: str | None = None,
        hangup_on: str | None = None,
        barge_in: Iterable[tuple[Event, str]] = (),
        tts_text: Callable[[str], str | None] | None = None,
        catalog: PromptCatalog | None = None,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        self.caller = ScriptedCaller(keys, hangup_on=hangup_on)
        self.transcript = Transcript()
        self.requests: list[InputRequest] = []
        """Every question put to the caller, in order (its prompt, `max_digits`, timeout)."""
        self.channel_variables: dict[str, str] = {}
        """What `set_variable` set (the dialplan's parameters are `variables`)."""
        self.answered = False
        self.ended_by: str | None = None
        """`caller`, `service` (its `hangup`) or `transfer`; None while the call is up."""
        self._call_id = call_id or f"memory-{next(_ids)}"
        self._route = route
        self._caller_id = caller_id
        self._language = language
        self._variables = dict(variables or {})
        self._barge_in = list(barge_in)
        self._tts_text = tts_text
        self._catalog = catalog
        self._on_event = on_event
        self._gone = asyncio.Event()
        self._watching = False

    # -- for tests --------------------------------------------------------------------------

    @property
    def heard(self) -> list[str]:
        """The transcript one line per event: `kind:value` (`answer` and `silence` bare)."""
        return [f"{e.kind}:{e.value}" if e.value else e.kind for e in self.transcript.events]

    @property
    def remaining(self) -> str:
        """The scripted keys nobody asked for."""
        return self.caller.remaining

    def hang_up(self) -> None:
        """The caller hangs up now (`wait_hangup` returns; the next operation raises)."""
        if self.ended_by is None:
            self._record(Event("hangup", "caller"))
            self._end("caller")

    # -- the Call protocol --------------------------------------------------------------------

    @property
    def call_id(self) -> str:
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
        return dict(self._variables)

    async def answer(self) -> None:
        self._check("answer")
        if not self.answered:
            self.answered = True
            self._record(Event("answer"))

    async def play(self, sound: str, escape: str = "") -> str:
        self._check("play")
        event = self._describe(sound)
        self._record(event)
        if event.kind == "missing":
            return ""
        if self.caller.hangup_on(sound):
            self._caller_hangs_up()
        return self._pressed_during(event, escape)

    async def say_digits(self, digits: str, escape: str = "") -> str:
        self._check("say_digits")
        event = Event("digits", digits)
        self._record(event)
        if any(self.caller.hangup_on(f"digits/{digit}") for digit in digits):
            self._caller_hangs_up()
        return self._pressed_during(event, escape)

    async def read_digits(self, sound: str, timeout_ms: int, max_digits: int) -> Entry:
        self._check("read_digits")
        event = self._describe(sound)
        self._record(event)
        if event.kind == "missing":
            return Entry("", True)  # what a transport makes of Asterisk's -1
        if self.caller.hangup_on(sound):
            self._caller_hangs_up()
        keys = await self._ask(InputRequest("get_data", sound, max_digits, timeout_ms))
        self._record(Event("pressed", keys) if keys else Event("silence"))
        digits, complete = typed_entry(keys, max_digits)
        return Entry(digits, not complete)

    async def wait_for_digit(self, timeout_ms: int) -> str:
        self._check("wait_for_digit")
        key = (await self._ask(InputRequest("wait_for_digit", None, 1, timeout_ms)))[:1]
        self._record(Event("pressed", key) if key else Event("silence"))
        return key

    async def set_variable(self, name: str, value: str) -> None:
        self._check("set_variable")
        self._record(Event("variable", f"{name}={value}"))
        self.channel_variables[name] = value

    async def set_language(self, language: str) -> None:
        self._check("set_language")
        self._language = language
        self._record(Event("language", language))

    async def transfer(self, destination: str) -> None:
        self._check("transfer")
        self._record(Event("transfer", destination))
        self._end("transfer")

    async def hangup(self) -> None:
        self._check("hangup")
        self._record(Event("hangup", "service"))
        self._end("service")

    async def wait_hangup(self) -> None:
        if self._watching:
            self._misuse("wait_hangup while another wait_hangup runs")
        self._watching = True
        try:
            await self._gone.wait()
        finally:
            self._watching = False

    # -- inside -------------------------------------------------------------------------------

    def _check(self, operation: str) -> None:
        """What a transport does before an operation: refuse it on a channel that is gone."""
        if self._watching:
            self._misuse(f"{operation} while wait_hangup runs")
        if self.ended_by is None:
            return
        if self.ended_by != "caller":
            self.transcript.note(f"{operation} after the flow's own {self.ended_by}")
        raise ChannelHangupError(f"{operation}: the channel is gone ({self.ended_by})")

    def _misuse(self, what: str) -> None:
        self.transcript.note(f"protocol broken: {what}")
        raise AssertionError(f"the flow broke the Call protocol: {what}")

    def _record(self, event: Event) -> None:
        self.transcript.add(event)
        self.caller.observe(event)
        if self._on_event is not None:
            self._on_event(event)

    def _end(self, by: str) -> None:
        self.ended_by = by
        self._gone.set()

    def _caller_hangs_up(self) -> None:
        self.hang_up()
        raise ChannelHangupError("the caller hung up")

    async def _ask(self, request: InputRequest) -> str:
        self.requests.append(request)
        keys = await self.caller.keys_for(request)
        if keys is None:
            self._caller_hangs_up()
        return keys or ""

    def _describe(self, sound: str) -> Event:
        if sound.startswith(PROMPT_PREFIX):
            prompt = sound.removeprefix(PROMPT_PREFIX)
            if self._catalog is not None and not self._catalog.texts.get(self._language, {}).get(prompt):
                return Event("missing", sound)
            return Event("prompt", prompt)
        if sound.startswith(TTS_PREFIX):
            text = self._tts_text(sound) if self._tts_text is not None else None
            return Event("tts", text if text is not None else sound)
        return Event("sound", sound)

    def _pressed_during(self, heard: Event, escape: str) -> str:
        """The key the caller presses while `heard` plays, if the script says so and it escapes."""
        for i, (event, key) in enumerate(self._barge_in):
            if event == heard:
                del self._barge_in[i]
                self._record(Event("pressed", key))
                if key in escape:
                    return key
                self.transcript.note(f"{key!r} pressed during {heard.kind} {heard.value!r} is no escape digit: lost")
                return ""
        return ""
