"""The Kimoby sandbox's knobs: faults, timings and the webhook retry schedule."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["KIMOBY_RETRY_SCHEDULE", "KimobyKnobs"]

KIMOBY_RETRY_SCHEDULE = (0.0, 60.0, 600.0, 3600.0, 3 * 3600.0, 6 * 3600.0)
"""The guide's webhook schedule: the first attempt as soon as possible, then 60 s, 10 min, 1 h,
3 h and 6 h after the latest failure (six attempts over some ten hours)."""


class KimobyKnobs(BaseModel):
    """Faults and timings tests and QA set at start or at run time (`PATCH /sandbox/knobs`)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    step_seconds: float = Field(0.05, ge=0, le=3600, description="seconds between two statuses of a message")
    retry_schedule: list[Annotated[float, Field(ge=0, le=86_400)]] = Field(
        default_factory=lambda: list(KIMOBY_RETRY_SCHEDULE), min_length=1, max_length=12,
        description="seconds before each webhook delivery attempt, after the event or the latest failure")
    delivery_timeout: float = Field(60.0, gt=0, le=120, description="seconds a webhook receiver has to answer")
    retry_after: int = Field(1, ge=0, le=3600, description="the Retry-After of a 429 from fail_next")
    fail_next: list[int] = Field(default_factory=list, description="the next requests answer these statuses")
    latency: float = Field(0.0, ge=0, le=60, description="seconds added before every answer")
    down: bool = Field(False, description="every connection is closed without an answer")
