"""`CircuitBreaker`: when most of KimVoice's recent answers are failures, stop asking it for a
while, so that a new call hears `system-unavailable` (and reaches an agent) at once instead of
waiting out its deadline; a few trial requests close it again once KimVoice answers.

Closed, it counts the outcome of every request (after the client's retries) over the last
`horizon` seconds, `window` at most: with `min_requests` of them and at least `failure_ratio`
failed, it opens. Open, it refuses every request for `open_seconds`, then half-opens: up to
`trials` requests go through, the rest are refused; `trials` successes close it, one failure
opens it again. A request cancelled (the caller hung up) tells nothing and is not counted.

A failure is KimVoice not answering usably: a 5xx, 9001, a reset or refused connection, a
deadline, a body that is not its model. An ApiError such as a wrong PIN is an answer: a success.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from ivr.logging import get_logger

__all__ = ["BreakerState", "CircuitBreaker", "Pass"]

log = get_logger("ivr.kimvoice")


class BreakerState(str, Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class Pass:
    """A request `allow` let through: in which state of the breaker (its `generation`)."""

    generation: int
    trial: bool


class CircuitBreaker:
    """One per KimVoice client. `on_change(state)` is told of every change (for /metrics)."""

    def __init__(
        self, *, window: int = 20, min_requests: int = 5, failure_ratio: float = 0.5, horizon: float = 60.0,
        open_seconds: float = 5.0, trials: int = 2, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._window, self._min, self._ratio, self._horizon = window, min_requests, failure_ratio, horizon
        self._open_seconds, self._trials = open_seconds, trials
        self._clock = clock
        self._outcomes: deque[tuple[float, bool]] = deque(maxlen=window)
        self._state = BreakerState.CLOSED
        self._opened_at = 0.0
        self._in_trial = 0
        self._trial_successes = 0
        self._generation = 0
        self.on_change: list[Callable[[BreakerState], None]] = []

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self._open_seconds:
            self._change(BreakerState.HALF_OPEN)
        return self._state

    def allow(self) -> Pass | None:
        """A pass for a request that may go now (then `done` must follow, whatever happens), or
        None: refused."""
        state = self.state
        if state is BreakerState.CLOSED:
            return Pass(self._generation, trial=False)
        if state is BreakerState.HALF_OPEN and self._in_trial < self._trials:
            self._in_trial += 1
            return Pass(self._generation, trial=True)
        return None

    def done(self, granted: Pass, ok: bool | None) -> None:
        """The outcome of a request let through: True answered, False failed, None no verdict."""
        if granted.generation != self._generation:
            return  # let through before the last change of state: it says nothing about this one
        if granted.trial:
            self._in_trial -= 1
            if ok is None:
                return
            if not ok:
                self._open("a trial request failed")
                return
            self._trial_successes += 1
            if self._trial_successes >= self._trials:
                self._outcomes.clear()
                self._change(BreakerState.CLOSED)
            return
        if ok is None:
            return
        now = self._clock()
        self._outcomes.append((now, ok))
        recent = [good for at, good in self._outcomes if now - at <= self._horizon]
        failed = recent.count(False)
        if len(recent) >= self._min and failed >= self._ratio * len(recent):
            self._open(f"{failed} of the last {len(recent)} requests failed")

    def _open(self, why: str) -> None:
        self._opened_at = self._clock()
        self._in_trial = self._trial_successes = 0
        self._change(BreakerState.OPEN, why)

    def _change(self, state: BreakerState, why: str = "") -> None:
        if state is BreakerState.HALF_OPEN:
            self._trial_successes = self._in_trial = 0
        self._generation += 1
        previous, self._state = self._state, state
        if state is BreakerState.OPEN:
            log.warning("kimvoice.breaker_open", reason=why, refuse_s=self._open_seconds,
                        effect="new calls hear system-unavailable at once")
        elif state is BreakerState.CLOSED and previous is not BreakerState.CLOSED:
            log.warning("kimvoice.breaker_closed", reason=f"{self._trials} trial requests answered")
        else:
            log.info("kimvoice.breaker_half_open", trials=self._trials)
        for observe in self.on_change:
            observe(state)
