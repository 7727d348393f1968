"""Prometheus metrics of the service, in their own registry (no process-global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ivr.flow.records import CallRecord

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2.5, 5, 8, 15, 30, 60)


class Metrics:
    """Calls by route and outcome, step and backend latencies, calls in progress."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.calls = Counter("ivr_calls", "Calls ended, by route and outcome", ["route", "outcome"],
                             registry=self.registry)
        self.active = Gauge("ivr_active_calls", "Calls in progress", registry=self.registry)
        self.steps = Histogram("ivr_step_seconds", "Time spent in each step of the flow", ["route", "step"],
                               buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.backend = Histogram("ivr_backend_seconds", "Latency of backend requests, by method and result",
                                 ["method", "result"], buckets=_LATENCY_BUCKETS, registry=self.registry)

    async def observe(self, record: CallRecord) -> None:
        """A record sink: count the ended call and its latencies."""
        self.calls.labels(record.route, record.outcome.value if record.outcome else "error").inc()
        for step in record.steps:
            if step.ms is not None:
                self.steps.labels(record.route, step.name).observe(step.ms / 1000)
        for call in record.backend:
            self.backend.labels(call.method, call.result).observe(call.ms / 1000)

    def render(self) -> bytes:
        return generate_latest(self.registry)
