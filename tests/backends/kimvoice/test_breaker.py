"""The circuit breaker on its own, with a clock the test moves: when it opens, what it refuses,
how trial requests close it or open it again."""

from __future__ import annotations

import io

from ivr.backends.kimvoice import BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, seen: list[BreakerState] | None = None) -> CircuitBreaker:
    made = CircuitBreaker(window=10, min_requests=4, failure_ratio=0.5, horizon=60, open_seconds=5, trials=2,
                          clock=clock)
    if seen is not None:
        made.on_change.append(seen.append)
    return made


def settle(made: CircuitBreaker, outcomes: list[bool]) -> None:
    for ok in outcomes:
        granted = made.allow()
        assert granted is not None
        made.done(granted, ok)


def test_a_few_failures_among_answers_keep_it_closed() -> None:
    made = breaker(Clock())
    settle(made, [True, False, True, True, False, True, True])  # 2 of 7
    assert made.state is BreakerState.CLOSED


def test_most_recent_requests_failing_open_it_and_requests_are_refused(log_text: io.StringIO) -> None:
    seen: list[BreakerState] = []
    made = breaker(Clock(), seen)
    settle(made, [True, False, False, False])  # 3 of 4
    assert made.state is BreakerState.OPEN and seen == [BreakerState.OPEN]
    assert made.allow() is None
    assert '"kimvoice.breaker_open"' in log_text.getvalue() and "3 of the last 4" in log_text.getvalue()


def test_old_failures_fall_out_of_the_horizon() -> None:
    clock = Clock()
    made = breaker(clock)
    settle(made, [False, False, False])
    clock.now += 61
    settle(made, [True, False])  # 1 of 2 recent: too few to judge
    assert made.state is BreakerState.CLOSED


def test_after_its_time_open_two_trials_close_it(log_text: io.StringIO) -> None:
    clock = Clock()
    seen: list[BreakerState] = []
    made = breaker(clock, seen)
    settle(made, [False] * 4)
    clock.now += 5
    first, second = made.allow(), made.allow()
    assert made.state is BreakerState.HALF_OPEN and first is not None and second is not None
    assert made.allow() is None  # two trials at a time, the rest refused
    made.done(first, True)
    made.done(second, True)
    assert made.state is BreakerState.CLOSED
    assert seen == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]
    assert '"kimvoice.breaker_closed"' in log_text.getvalue()


def test_a_failed_trial_opens_it_again_for_its_whole_time() -> None:
    clock = Clock()
    made = breaker(clock)
    settle(made, [False] * 4)
    clock.now += 5
    trial = made.allow()
    assert trial is not None
    made.done(trial, False)
    assert made.state is BreakerState.OPEN
    clock.now += 4.9
    assert made.allow() is None


def test_a_trial_cancelled_tells_nothing_and_frees_its_place() -> None:
    clock = Clock()
    made = breaker(clock)
    settle(made, [False] * 4)
    clock.now += 5
    first, second = made.allow(), made.allow()
    assert first is not None and second is not None
    made.done(first, None)  # the caller hung up
    third = made.allow()
    assert third is not None and made.state is BreakerState.HALF_OPEN
    made.done(second, True)
    made.done(third, True)
    assert made.state is BreakerState.CLOSED


def test_a_request_let_through_before_it_opened_says_nothing_after() -> None:
    clock = Clock()
    made = breaker(clock)
    early = made.allow()
    assert early is not None
    settle(made, [False] * 4)
    clock.now += 5
    trial = made.allow()
    assert trial is not None
    made.done(early, True)  # its answer comes late: not a trial
    assert made.state is BreakerState.HALF_OPEN
    made.done(trial, True)
    assert made.state is BreakerState.HALF_OPEN  # one trial of two
