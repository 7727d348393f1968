"""The call record: one per call, whatever happened, with every step and backend call timed.

It holds no PIN, no shackle code and no whole code: the flow writes codes in masked.
"""

from __future__ import annotations

import time
from enum import Enum
from typing import Literal

from pydantic import BaseModel, Field


class Outcome(str, Enum):
    UPDATE_CODE_READ = "update_code_read"
    CBS_CODE_READ = "cbs_code_read"
    NETCODE_READ = "netcode_read"
    IDENTIFIED = "identified"
    ANNOUNCED = "announced"
    INVALID_CREDENTIALS = "invalid_credentials"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    KEY_LOCKED = "key_locked"
    NOT_AUTHORIZED = "not_authorized"
    UNAVAILABLE = "unavailable"
    TRANSFERRED = "transferred"
    CALLER_HANGUP = "caller_hangup"
    ERROR = "error"


class Step(BaseModel):
    name: str
    at: float = Field(description="seconds since the call started")
    ms: float | None = Field(None, description="how long the step took, when it is over")


class BackendCall(BaseModel):
    method: str
    at: float
    ms: float
    result: str = Field(description="ok, or the error's class and code")


class CallRecord(BaseModel):
    """What happened on one call. Written once, when the call ends."""

    call_id: str
    route: str
    caller_id: str
    started: float = Field(default_factory=time.time, description="epoch seconds")
    ended: float | None = None
    language: str = "en"
    key_number: int | None = None
    codes: list[str] = Field(default_factory=list, description="codes read to the caller, masked")
    steps: list[Step] = Field(default_factory=list)
    backend: list[BackendCall] = Field(default_factory=list)
    outcome: Outcome | None = None
    detail: str | None = Field(None, description="why the call ended so, when it was not the happy path")

    @property
    def last_step(self) -> str:
        return self.steps[-1].name if self.steps else ""

    def elapsed(self) -> float:
        return time.time() - self.started


class Announcement(BaseModel):
    """What one outbound call says: a message, and a code when the call delivers one."""

    job_id: str = Field(min_length=1, max_length=64)
    message: str = Field("", description="spoken by TTS")
    language: str = "en"
    code: str | None = Field(None, pattern=r"^[0-9]{1,20}$", description="read digit by digit")
    code_type: Literal["update", "cbs"] = "update"
