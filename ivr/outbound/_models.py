"""An outbound job: one request to reach one person, its attempts and its history.

A job is asked for (`JobRequest`, checked here once for the API and the CLI alike), kept in the
store, and moved through its states by the runner. A final state never changes again.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ivr.errors import JobInputError
from ivr.logging import mask_code


class JobKind(str, Enum):
    NOTICE = "notice"
    BRIDGE = "bridge"


class JobState(str, Enum):
    QUEUED = "queued"
    DIALING = "dialing"
    RINGING = "ringing"
    ANSWERED = "answered"
    COMPLETED = "completed"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in FINAL_STATES

    @property
    def in_flight(self) -> bool:
        return self in IN_FLIGHT_STATES


FINAL_STATES = frozenset({JobState.COMPLETED, JobState.BUSY, JobState.NO_ANSWER, JobState.FAILED, JobState.CANCELLED})
IN_FLIGHT_STATES = frozenset({JobState.DIALING, JobState.RINGING, JobState.ANSWERED})
RETRIED_STATES = frozenset({JobState.BUSY, JobState.NO_ANSWER})
"""An attempt that ends so is tried again after `IVR_OUTBOUND_RETRY_SECONDS`, up to `max_attempts`."""

PLATFORMS = ("asterisk", "ictcore", "kazoo")
Platform = Literal["asterisk", "ictcore", "kazoo"]

MAX_AHEAD = timedelta(days=90)
"""How far ahead `not_before` may be: a date further out is more likely a typo than a plan."""

_E164 = re.compile(r"\+[0-9]{7,15}")
_LOCAL = re.compile(r"[0-9]{3,15}")
_CODE = re.compile(r"[0-9]{4,12}")
_AGENT = re.compile(r"[A-Za-z0-9]{1,16}/[A-Za-z0-9_.@+-]{1,80}|((user|device):)?[A-Za-z0-9_-]{1,64}")
_KEY = re.compile(r"[\x21-\x7e]{1,128}")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class JobRequest(BaseModel):
    """What a client asks for: the contract's fields, each with its rule.

    `check()` turns the first broken rule into `JobInputError(field, rule)`; every rule is also
    in `errors()`, which the HTTP API returns whole.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    kind: JobKind = Field(
        description="notice: the announce route speaks a message; bridge: an agent's phone, then the key holder's"
    )
    to: str = Field(description="`+` and 7-15 digits (E.164), or 3-15 digits for a local or internal number")
    message: str | None = Field(None, description="notice only: 1-500 characters, spoken by TTS")
    code: str | None = Field(None, description="notice only: 4-12 digits, spoken digit by digit")
    language: str | None = Field(None, description="en, fr or es (a configured language); default the first")
    agent: str | None = Field(None, description="bridge only: the agent's endpoint, e.g. PJSIP/agent1, or for Kazoo "
                                                "user:<id> or device:<id>")
    via: Platform | None = Field(None, description="asterisk, ictcore or kazoo; default IVR_OUTBOUND_VIA")
    idempotency_key: str | None = Field(None, description="1-128 printable characters; the same key within 24 h "
                                                          "returns the existing job")
    not_before: datetime | None = Field(None, description="a time with its zone; the job waits until then")
    max_attempts: int | None = Field(None, ge=1, le=10, description="1 to 10 (default IVR_OUTBOUND_MAX_ATTEMPTS)")

    @field_validator("to")
    @classmethod
    def _to(cls, value: str) -> str:
        if not (_E164.fullmatch(value) or _LOCAL.fullmatch(value)):
            raise ValueError("must be + and 7 to 15 digits, or 3 to 15 digits")
        return value

    @field_validator("message")
    @classmethod
    def _message(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.strip() or len(value) > 500:
            raise ValueError("must be 1 to 500 characters")
        if _CONTROL.search(value):
            raise ValueError("must not hold control characters")
        return value

    @field_validator("code")
    @classmethod
    def _code(cls, value: str | None) -> str | None:
        if value is not None and not _CODE.fullmatch(value):
            raise ValueError("must be 4 to 12 digits")
        return value

    @field_validator("agent")
    @classmethod
    def _agent(cls, value: str | None) -> str | None:
        if value is not None and not _AGENT.fullmatch(value):
            raise ValueError("must be an endpoint such as PJSIP/agent1, or a Kazoo user:ID or device:ID")
        return value

    @field_validator("idempotency_key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        if value is not None and not _KEY.fullmatch(value):
            raise ValueError("must be 1 to 128 printable characters without spaces")
        return value

    @field_validator("not_before")
    @classmethod
    def _not_before(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("must carry its time zone, e.g. 2026-12-03T09:00:00+01:00")
        if value - datetime.now(UTC) > MAX_AHEAD:
            raise ValueError("must be within 90 days")
        return value

    @model_validator(mode="after")
    def _by_kind(self) -> JobRequest:
        if self.kind is JobKind.NOTICE:
            if self.message is None:
                raise ValueError("message: a notice needs a message of 1 to 500 characters")
            if self.agent is not None:
                raise ValueError("agent: only a bridge has an agent")
        else:
            if self.agent is None:
                raise ValueError("agent: a bridge needs the agent's endpoint")
            if self.message is not None or self.code is not None:
                raise ValueError("message: a bridge has no message or code")
        return self

    def fingerprint(self) -> str:
        """What an idempotency key is held to: the same key with another request is a conflict."""
        body = self.model_dump_json(exclude={"idempotency_key"})
        return hashlib.sha256(body.encode()).hexdigest()

    @classmethod
    def check(cls, data: Any) -> JobRequest:
        """Validate `data` (a dict from JSON or the CLI); `JobInputError` for the first broken rule."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            field, rule = request_errors(exc)[0]
            raise JobInputError(field, rule) from None


def request_errors(exc: ValidationError) -> list[tuple[str, str]]:
    """(field, rule) for each rule a request broke, in words a client can act on."""
    errors: list[tuple[str, str]] = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(part) for part in error["loc"]) or "body"
        message = str(error["msg"]).removeprefix("Value error, ")
        if ": " in message and loc == "body":
            loc, message = message.split(": ", 1)
        if error["type"] == "extra_forbidden":
            message = "is not a field of a job"
        errors.append((loc, message))
    return errors


class HistoryEntry(BaseModel):
    """One change of a job: when, to what, why, and in which attempt."""

    at: float
    state: JobState
    reason: str = ""
    attempt: int | None = None


class Attempt(BaseModel):
    """One call placed (or about to be) for a job, with the platform's references to it."""

    job_id: str
    number: int = Field(ge=1)
    platform: str
    state: JobState = JobState.DIALING
    started: float
    ended: float | None = None
    reason: str = ""
    refs: dict[str, str] = Field(default_factory=dict, description="the platform's ids: ActionID, spool id...")

    @property
    def id(self) -> str:
        """The attempt's own id: the AMI ActionID and channel id, the job variable of its call."""
        return attempt_id(self.job_id, self.number)


class Job(BaseModel):
    """A job as kept: its request, where it stands, and what happened so far."""

    id: str
    kind: JobKind
    to: str
    message: str | None = None
    code: str | None = Field(None, description="in full until the job is final, then erased")
    language: str
    agent: str | None = None
    via: str
    idempotency_key: str | None = None
    not_before: float | None = None
    max_attempts: int
    state: JobState = JobState.QUEUED
    created: float
    updated: float
    due: float = Field(description="when the runner may next look at it")
    attempts_used: int = Field(0, description="calls placed, which count against max_attempts")
    unavailable_since: float | None = Field(None, description="since when the platform could not be reached")
    cancel_requested: bool = False
    reason: str = Field("", description="why it is in its state")
    history: list[HistoryEntry] = Field(default_factory=list)
    attempts: list[Attempt] = Field(default_factory=list)

    @property
    def final(self) -> bool:
        return self.state.final

    @property
    def current_attempt(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    def view(self) -> dict[str, Any]:
        """The job as the API and the CLI show it: the code masked, whatever the state."""
        data = self.model_dump(mode="json")
        data["code"] = mask_code(self.code) if self.code else None
        data["created"] = _iso(self.created)
        data["updated"] = _iso(self.updated)
        data["due"] = _iso(self.due) if not self.final else None
        data["not_before"] = _iso(self.not_before) if self.not_before is not None else None
        data["unavailable_since"] = _iso(self.unavailable_since) if self.unavailable_since is not None else None
        for entry in data["history"]:
            entry["at"] = _iso(entry["at"])
        for attempt in data["attempts"]:
            attempt["id"] = attempt_id(self.id, attempt["number"])
            attempt["started"] = _iso(attempt["started"])
            attempt["ended"] = _iso(attempt["ended"]) if attempt["ended"] is not None else None
        return data


def attempt_id(job_id: str, number: int) -> str:
    return f"{job_id}-{number}"


def split_attempt_id(value: str) -> tuple[str, int] | None:
    """(job id, attempt number) of an attempt id, or None when it is not one."""
    job_id, _, number = value.rpartition("-")
    if not job_id or not number.isdigit() or len(number) > 3:
        return None
    return job_id, int(number)


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_job_id(now: float | None = None) -> str:
    """A ULID: 48 bits of milliseconds then 80 random bits, in Crockford base 32 — sortable by
    creation time as text, unique without asking the store. Within one millisecond, ids made in
    this process go up by one, so that they sort in the order they were made."""
    global _last
    millis = int((time.time() if now is None else now) * 1000)
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    if millis <= _last >> 80:
        value = _last + 1
    _last = value
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


_last = 0


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
