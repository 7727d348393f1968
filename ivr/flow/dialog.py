"""Caller primitives: what a step of the flow says to the caller and asks of them.

Retries, timeouts, the `invalid-entry` prompt, `too-many-attempts` and the operator escape
(`0` in a menu, `*0` in an entry) live here once, so that a step reads like the call script::

    key = await dialog.ask("enter-key-number", max_digits=10, valid=is_key_number)
    choice = await dialog.menu("choose-code-type", "12", repeat=True)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ivr.errors import ApiError, ChannelHangupError
from ivr.flow.call import Call
from ivr.logging import get_logger, mask_code
from ivr.records import BackendCall, CallRecord, Outcome, Step
from ivr.tts import TtsCache

T = TypeVar("T")

log = get_logger("ivr.flow")

OPERATOR_KEY = "0"
OPERATOR_ENTRY = "*0"
REPEAT_KEY = "*"
ATTEMPTS = 3
MAX_REPEATS = 5


class OperatorRequested(Exception):
    """The caller pressed `0` in a menu or `*0` in an entry. Control flow, not an error."""


class TooManyAttempts(Exception):
    """The third failure of one question. Control flow, not an error.

    `silent` is true when the caller never pressed anything: they may have put the phone down.
    """

    def __init__(self, question: str, silent: bool) -> None:
        super().__init__(question)
        self.question, self.silent = question, silent


class EndCall(Exception):
    """The flow has said what it had to: goodbye, hang up, and record `outcome`."""

    def __init__(self, outcome: Outcome, detail: str | None = None) -> None:
        super().__init__(outcome.value)
        self.outcome, self.detail = outcome, detail


class GaveUp(ChannelHangupError):
    """A hang-up that says more than `caller_hangup` (right after `invalid-credentials`):
    still a hang-up to every step, but the call records `outcome`."""

    def __init__(self, outcome: Outcome, detail: str) -> None:
        super().__init__(detail)
        self.outcome, self.detail = outcome, detail


@dataclass(frozen=True)
class DialogConfig:
    """The settings a dialog needs, taken from `Settings` once per process."""

    entry_timeout_ms: int = 6000
    please_wait_after: float = 1.5
    operator: str = ""


class Dialog:
    """The flow's side of one call: prompts, questions, menus, backend calls, the record."""

    def __init__(self, call: Call, record: CallRecord, tts: TtsCache, config: DialogConfig) -> None:
        self.call = call
        self.record = record
        self.tts = tts
        self.config = config
        self._step_started = time.perf_counter()

    # -- what the caller hears ------------------------------------------------------------

    async def play(self, prompt: str, escape: str = "") -> str:
        """Play the fixed prompt `prompt` (a prompt id of the contract)."""
        return await self.call.play(f"keybox/{prompt}", escape)

    async def speak(self, text: str, escape: str = "") -> str:
        """Speak text that came from a backend (a name, instructions) by TTS."""
        if not text.strip():
            return ""
        sound = await self.tts.render(text, self.record.language)
        return await self.call.play(sound, escape)

    async def say_digits(self, digits: str, escape: str = "") -> str:
        """Speak a code or number one digit at a time."""
        return await self.call.say_digits(digits, escape)

    async def read_code(self, intro: str | None, code: str) -> None:
        """Read a code aloud (after the prompt `intro`, when given) and note it, masked, in the record."""
        if intro is not None:
            await self.play(intro)
        await self.say_digits(code)
        masked = mask_code(code)
        if masked not in self.record.codes:
            self.record.codes.append(masked)

    # -- what the caller is asked -----------------------------------------------------------

    async def ask(
        self, prompt: str, *, max_digits: int, valid: Callable[[str], bool], attempts: int = ATTEMPTS
    ) -> str:
        """Ask for digits until `valid` accepts them; `invalid-entry` between tries."""
        silent = True
        for attempt in range(1, attempts + 1):
            entry = await self.call.read_digits(f"keybox/{prompt}", self.config.entry_timeout_ms, max_digits)
            digits = entry.digits
            if digits.startswith(OPERATOR_ENTRY) and self.config.operator:
                raise OperatorRequested(prompt)
            if digits and valid(digits):
                return digits
            silent = silent and not digits
            log.info("flow.invalid_entry", question=prompt, attempt=attempt, empty=not digits)
            if attempt < attempts:
                await self.play("invalid-entry")
        raise TooManyAttempts(prompt, silent)

    async def menu(self, prompt: str, options: str, *, repeat: bool = False, attempts: int = ATTEMPTS) -> str:
        """A one-key menu played as `prompt`; returns one of `options`."""

        async def offer() -> str:
            return (await self.call.read_digits(f"keybox/{prompt}", self.config.entry_timeout_ms, 1)).digits

        return await self.choice(prompt, options, offer, repeat=repeat, attempts=attempts)

    async def choose(self, intro: str, names: Sequence[str], attempts: int = ATTEMPTS) -> int:
        """Offer spoken names ("<name>, press 1, ..."); return the index of the one chosen."""
        names = names[:9]
        options = "".join(str(i) for i in range(1, len(names) + 1))

        async def offer() -> str:
            escape = self.escape(options)
            pressed = await self.play(intro, escape)
            for digit, name in zip(options, names, strict=True):
                pressed = pressed or await self.speak(name, escape)
                pressed = pressed or await self.play("press", escape)
                pressed = pressed or await self.say_digits(digit, escape)
            return pressed or await self.call.wait_for_digit(self.config.entry_timeout_ms)

        return int(await self.choice(intro, options, offer, attempts=attempts)) - 1

    def escape(self, options: str) -> str:
        """The keys that cut a spoken offer short: its options, and `0` when there is an operator
        (`choice` hands that on to them)."""
        return options + (OPERATOR_KEY if self.config.operator else "")

    async def offer_operator(self) -> None:
        """`press-zero-for-operator`, when there is one, and a moment to press it."""
        if not self.config.operator:
            return
        entry = await self.call.read_digits("keybox/press-zero-for-operator", self.config.entry_timeout_ms // 2, 1)
        if entry.digits == OPERATOR_KEY:
            raise OperatorRequested("press-zero-for-operator")

    async def choice(
        self, question: str, options: str, offer: Callable[[], Awaitable[str]], *,
        repeat: bool = False, attempts: int = ATTEMPTS,
    ) -> str:
        """Run `offer` (which plays the choices and returns a key) until a key in `options`."""
        failures = repeats = 0
        silent = True
        while True:
            key = await offer()
            if key and key in options:
                return key
            if key == OPERATOR_KEY and self.config.operator:
                raise OperatorRequested(question)
            if key == REPEAT_KEY and repeat and repeats < MAX_REPEATS:
                repeats += 1
                continue
            failures += 1
            silent = silent and not key
            log.info("flow.invalid_choice", question=question, failures=failures, empty=not key)
            if failures >= attempts:
                raise TooManyAttempts(question, silent)
            if key:
                await self.play("invalid-entry")

    # -- backends --------------------------------------------------------------------------

    async def backend(self, method: str, request: Awaitable[T]) -> T:
        """Run one backend request; past `please_wait_after` the caller hears `please-wait`.

        A caller who hangs up meanwhile is noticed at once (`Call.wait_hangup`): the request is
        cancelled and `ChannelHangupError` raised, so that nothing more is asked for no one. Its
        latency and result go into the record either way. A caller known to be gone already is
        asked nothing: the request is not started (nor recorded).
        """
        task = await self._started(request)
        started = time.perf_counter()
        at = self.record.elapsed()
        result = "ok"
        try:
            if not await self._answered(task, self.config.please_wait_after):
                await self.play("please-wait")
                await self._answered(task, None)
            return task.result()
        except BaseException as exc:
            result = f"ApiError {exc.error_code}" if isinstance(exc, ApiError) else type(exc).__name__
            raise
        finally:
            if not task.done():
                task.cancel()
            ms = round((time.perf_counter() - started) * 1000, 1)
            self.record.backend.append(BackendCall(method=method, at=round(at, 3), ms=ms, result=result))

    async def unless_hung_up(self, waiting: Awaitable[T]) -> T:
        """Wait for `waiting`, which uses no channel (the sign-in guard's wait for a turn); as soon
        as the caller hangs up (or if they have), cancel it (or never start it) and raise
        `ChannelHangupError`: no one is left to wait for."""
        task = await self._started(waiting)
        try:
            await self._answered(task, None)
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task})  # what it holds (a turn) is let go before the call ends
        return task.result()

    async def _started(self, work: Awaitable[T]) -> asyncio.Future[T]:
        """`work` started, unless the caller is known to be gone already: then it never starts
        (`ChannelHangupError`), so that a caller who hung up asks nothing of anyone."""
        try:
            await self._answered(None, 0)
        except BaseException:
            if isinstance(work, Coroutine):
                work.close()  # never started: no "never awaited" warning
            raise
        return asyncio.ensure_future(work)

    async def _answered(self, task: asyncio.Future[T] | None, timeout: float | None) -> bool:
        """Wait up to `timeout` for `task` (None: only look for a hang-up); whether it is done.
        Raises `ChannelHangupError` as soon as the caller hangs up meanwhile, unless `task` is
        done by then: what it holds (an answer, a counted guess) must not be lost."""
        hangup = asyncio.ensure_future(self.call.wait_hangup())
        watched: set[asyncio.Future[Any]] = {hangup} if task is None else {task, hangup}
        try:
            await asyncio.wait(watched, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            hangup.cancel()
            await asyncio.wait({hangup})  # it lets go of the channel before the next command
        done = task is not None and task.done()
        if done or hangup.cancelled():
            return done
        hangup.result()  # a protocol error the watch ran into
        raise ChannelHangupError("the caller hung up while the flow waited")

    # -- the record ------------------------------------------------------------------------

    def step(self, name: str) -> None:
        """Mark the start of a step of the contract; the previous one's time is closed."""
        now = time.perf_counter()
        if self.record.steps:
            self.record.steps[-1].ms = round((now - self._step_started) * 1000, 1)
        self._step_started = now
        self.record.steps.append(Step(name=name, at=round(self.record.elapsed(), 3)))

    def close_steps(self) -> None:
        if self.record.steps and self.record.steps[-1].ms is None:
            self.record.steps[-1].ms = round((time.perf_counter() - self._step_started) * 1000, 1)
