"""Outbound calls: jobs, the runner that places them, and the platforms that carry them.

A job is one request to reach one person (`notice`: the `announce` route speaks a message;
`bridge`: an agent's phone rings, then the key holder's). Platforms live in
`ivr.outbound.platforms`: Asterisk over AMI, ICTCore (and Kazoo, later), each a `Platform`.
"""

from ivr.outbound._hours import CallingHours
from ivr.outbound._jobs import KINDS, Outbound, configured_platforms
from ivr.outbound._models import (
    FINAL_STATES,
    IN_FLIGHT_STATES,
    PLATFORMS,
    Attempt,
    HistoryEntry,
    Job,
    JobKind,
    JobRequest,
    JobState,
    attempt_id,
    new_job_id,
    request_errors,
    split_attempt_id,
)
from ivr.outbound._platform import AttemptContext, AttemptEnd, Platform
from ivr.outbound._runner import Runner
from ivr.outbound._store import JobStore

__all__ = [
    "FINAL_STATES",
    "IN_FLIGHT_STATES",
    "KINDS",
    "PLATFORMS",
    "Attempt",
    "AttemptContext",
    "AttemptEnd",
    "CallingHours",
    "HistoryEntry",
    "Job",
    "JobKind",
    "JobRequest",
    "JobState",
    "JobStore",
    "Outbound",
    "Platform",
    "Runner",
    "attempt_id",
    "configured_platforms",
    "new_job_id",
    "request_errors",
    "split_attempt_id",
]
