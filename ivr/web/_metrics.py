"""Prometheus metrics of the service, in their own registry (no process-global state).

Every label value comes from a closed set: a value a peer chose (a route name in the AGI
request, an error code in a KimVoice answer) would let it grow `/metrics` without bound.
"""

from __future__ import annotations

from collections.abc import Collection

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ivr.backends.kimvoice import METHODS, BreakerState
from ivr.errors import ErrorCode
from ivr.outbound import PLATFORMS, Job
from ivr.records import CallRecord

UNKNOWN = "unknown"
_API_ERRORS = frozenset(f"ApiError {code.value}" for code in ErrorCode)

_RETRY_CAUSES = frozenset({"500", "502", "503", "504", "maintenance", "connect", "reset", "timeout"})
_KIMVOICE_METHODS = frozenset(method.name for method in METHODS)
_AGI_DROPS = frozenset({"refused", "evicted", "no_environment"})
_BREAKER_LEVELS = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2.5, 5, 8, 15, 30, 60)


class Metrics:
    """Calls by route and outcome, step and backend latencies, calls in progress.

    `routes` are the route names the flow knows; any other route is counted as `unknown`.
    """

    def __init__(self, routes: Collection[str]) -> None:
        self._routes = frozenset(routes)
        self.registry = CollectorRegistry()
        self.calls = Counter("ivr_calls", "Calls ended, by route and outcome", ["route", "outcome"],
                             registry=self.registry)
        self.active = Gauge("ivr_active_calls", "Calls in progress", registry=self.registry)
        self.steps = Histogram("ivr_step_seconds", "Time spent in each step of the flow", ["route", "step"],
                               buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.backend = Histogram("ivr_backend_seconds", "Latency of backend requests, by method and result",
                                 ["method", "result"], buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.kimvoice_retries = Counter("ivr_kimvoice_retries", "KimVoice requests sent again, by method and cause",
                                        ["method", "cause"], registry=self.registry)
        self.kimvoice_breaker = Gauge("ivr_kimvoice_breaker_state", "KimVoice's circuit breaker: 0 closed, "
                                      "1 half-open (trial requests), 2 open (requests refused)", registry=self.registry)
        self.kimvoice_breaker_opened = Counter("ivr_kimvoice_breaker_opened", "Times KimVoice's breaker opened",
                                               registry=self.registry)
        self.agi_drops = Counter(
            "ivr_agi_connections_dropped", "FastAGI connections closed before they became calls (no call record): "
            "refused (peer not allowed), evicted (too many waiting for their environment), no_environment",
            ["reason"], registry=self.registry)
        self.guard_engaged = Counter(
            "ivr_guard_engaged", "Times a bound on PIN guessing engaged: a key, a calling number, withheld "
            "numbers locked; global: sign-ins paced line-wide", ["bound"], registry=self.registry)
        self.outbound_jobs = Counter("ivr_outbound_jobs", "Outbound jobs ended, by platform and final state",
                                     ["platform", "state"], registry=self.registry)
        self.outbound_active = Gauge("ivr_outbound_active_calls", "Outbound calls in progress, by platform",
                                     ["platform"], registry=self.registry)
        self.outbound_attempts = Histogram("ivr_outbound_attempts", "Calls placed per outbound job, at its end",
                                           ["platform"], buckets=(1, 2, 3, 4, 5, 10), registry=self.registry)

    async def observe(self, record: CallRecord) -> None:
        """A record sink: count the ended call and its latencies."""
        route = record.route if record.route in self._routes else UNKNOWN
        self.calls.labels(route, record.outcome.value if record.outcome else "error").inc()
        for step in record.steps:  # step names and methods are the flow's own constants
            if step.ms is not None:
                self.steps.labels(route, step.name).observe(step.ms / 1000)
        for call in record.backend:
            self.backend.labels(call.method, _result(call.result)).observe(call.ms / 1000)

    def job_final(self, job: Job) -> None:
        """The outbound runner's `on_final`: a job reached its final state."""
        self.outbound_jobs.labels(_closed(job.via, PLATFORMS), job.state.value).inc()
        self.outbound_attempts.labels(_closed(job.via, PLATFORMS)).observe(job.attempts_used)

    def outbound_active_now(self, platform: str, count: int) -> None:
        """The outbound runner's `on_active`: calls in progress on `platform`."""
        self.outbound_active.labels(_closed(platform, PLATFORMS)).set(count)

    def kimvoice_retried(self, method: str, cause: str) -> None:
        """The KimVoice client's `on_retry`."""
        self.kimvoice_retries.labels(_closed(method, _KIMVOICE_METHODS), _closed(cause, _RETRY_CAUSES)).inc()

    def kimvoice_breaker_now(self, state: BreakerState) -> None:
        """The breaker's `on_change`."""
        self.kimvoice_breaker.set(_BREAKER_LEVELS[state])
        if state is BreakerState.OPEN:
            self.kimvoice_breaker_opened.inc()

    def guard_engaged_by(self, bound: str) -> None:
        """The sign-in guard's `on_engaged`: `bound` is key, caller, withheld or global."""
        self.guard_engaged.labels(bound).inc()

    def agi_dropped(self, reason: str) -> None:
        """The FastAGI server's `on_dropped`."""
        self.agi_drops.labels(_closed(reason, _AGI_DROPS)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _closed(value: str, known: Collection[str]) -> str:
    return value if value in known else UNKNOWN


def _result(result: str) -> str:
    """`ok`, an error class, or `ApiError <code>` for the codes of the contract (others: `ApiError other`)."""
    if result.startswith("ApiError ") and result not in _API_ERRORS:
        return "ApiError other"
    return result
