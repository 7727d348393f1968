"""The call record: one per call, whatever happened, with every step and backend call timed.

It holds no PIN, no shackle code and no whole code: the flow writes codes in masked.
Shared by the flow (which writes them), the store (which keeps them) and the web (which counts
them), so it belongs to none of them; the interfaces of where records are kept,
`ivr.flow.records.CallRecords` and `Announcements`, are the flow's.
"""

from __future__ import annotations

import time
from enum import Enum
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, Field


def _capped(limit: int) -> BeforeValidator:
    """Cut a peer-supplied text to `limit` characters: a record is kept whatever the peer sent."""
    return BeforeValidator(lambda value: value[:limit] if isinstance(value, str) else value)


CallId = Annotated[str, _capped(128)]
Route = Annotated[str, _capped(64)]
CallerId = Annotated[str, _capped(64)]
Detail = Annotated[str, _capped(500)]


class Outcome(str, Enum):
    """How a call ended: the call script's list (`docs/call-script.md`), one per record."""

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


class TextMessage(BaseModel):
    """A text message the call sent (the code, by Kimoby) and how its delivery went, as Kimoby's
    webhooks tell it after the call."""

    id: Annotated[str, _capped(128)]
    status: Annotated[str, _capped(32)] = Field("sent", description="sent, then Kimoby's: queued ... delivered, "
                                                "undelivered or failed")
    error: Annotated[str, _capped(200)] | None = None


class CallRecord(BaseModel):
    """What happened on one call. Written once, when the call ends."""

    call_id: CallId
    route: Route
    caller_id: CallerId
    started: float = Field(default_factory=time.time, description="epoch seconds")
    ended: float | None = None
    language: str = "en"
    key_number: int | None = Field(None, description="the key number, once KimVoice has said it knows it")
    key_entered: str | None = Field(
        None, description="the last key number the caller typed, masked: it may hold a PIN typed without #"
    )
    codes: list[str] = Field(default_factory=list, description="codes read to the caller, masked")
    texts: list[TextMessage] = Field(default_factory=list, description="codes sent by text message")
    steps: list[Step] = Field(default_factory=list)
    backend: list[BackendCall] = Field(default_factory=list)
    attempt_id: Annotated[str, _capped(64)] | None = Field(
        None, description="the outbound job attempt this call delivered (the `announce` route)"
    )
    outcome: Outcome | None = None
    detail: Detail | None = Field(None, description="why the call ended so, when it was not the happy path")

    @property
    def last_step(self) -> str:
        return self.steps[-1].name if self.steps else ""

    def elapsed(self) -> float:
        return time.time() - self.started

    @property
    def key_shown(self) -> str:
        """The key number as an agent or an operator may see it: in full once KimVoice knows it."""
        return str(self.key_number) if self.key_number is not None else self.key_entered or ""


class Announcement(BaseModel):
    """What one outbound call says: a message, and a code when the call delivers one."""

    job_id: str = Field(min_length=1, max_length=64)
    message: str = Field("", description="spoken by TTS")
    language: str = "en"
    code: str | None = Field(None, pattern=r"^[0-9]{1,20}$", description="read digit by digit")
