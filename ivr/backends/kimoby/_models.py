"""Kimoby's JSON models, the part the line uses, as Kimoby's API guide describes them.

Unknown fields are ignored. Ids are strings in the guide's tables and numbers in its examples
(`"id": 345634563`): both are read, as strings. A body that does not fit is Kimoby's fault, not
the caller's: `SmsUnavailableError`, through `parse`.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, TypeVar

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from ivr.errors import SmsUnavailableError
from ivr.http_answers import misfit

__all__ = [
    "MAX_BODY_CHARS",
    "Customer",
    "KimobyId",
    "Message",
    "MessageStatus",
    "Page",
    "Webhook",
    "WebhookEnvelope",
    "parse",
]

MAX_BODY_CHARS = 1600
"""The longest text Kimoby sends (its guide: "a maximum length of 1600 characters")."""


def _id_text(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


KimobyId = Annotated[str, BeforeValidator(_id_text), Field(min_length=1, max_length=128)]
"""An id Kimoby made: a string or a number on the wire, a string here."""


class KimobyModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class MessageStatus(str, Enum):
    """The guide's message statuses; the last four are where a message ends."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    RECEIVING = "receiving"
    RECEIVED = "received"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        return self in (MessageStatus.RECEIVED, MessageStatus.DELIVERED, MessageStatus.UNDELIVERED,
                        MessageStatus.FAILED)


class Customer(KimobyModel):
    """A Kimoby customer: a key holder, found by `reference` (by default the key number)."""

    id: KimobyId
    reference: str | None = Field(None, max_length=256)
    cell_phone_number: str | None = Field(None, max_length=32, repr=False)
    is_unsubscribed: bool = False
    updated_at: datetime | None = None

    @property
    def has_cell_phone(self) -> bool:
        return bool(self.cell_phone_number and self.cell_phone_number.strip())


class Message(KimobyModel):
    """A text message. `body` holds the code: it is left out of `repr` and must never be logged."""

    id: KimobyId
    customer_id: KimobyId | None = None
    body: str = Field("", repr=False)
    status: MessageStatus
    error: str | None = Field(None, max_length=1000)
    updated_at: datetime | None = None


class Webhook(KimobyModel):
    """A webhook registered with Kimoby. Its key (`authentication_key` in the model,
    `key_authentication` in the guide's signature section) is only in the answer to its creation."""

    id: KimobyId
    url: str = Field(max_length=2048)
    events: list[str] = Field(default_factory=list, max_length=32)
    authentication_key: str | None = Field(
        None, validation_alias=AliasChoices("authentication_key", "key_authentication"), repr=False,
        max_length=256,
    )


class Pagination(KimobyModel):
    page: int = Field(ge=1)
    pages: int = Field(ge=0)


class Page(KimobyModel):
    """One page of a list: its items (still raw) and where it stands."""

    items: list[dict[str, Any]]
    pagination: Pagination | None = None


class WebhookEnvelope(KimobyModel):
    """What Kimoby POSTs to a webhook: `{"data": {...}, "event_name": "..."}`.

    The guide gives an event no id of its own, so `event_id` is made from what tells two events
    apart (name, the object's id, status, error, unsubscribed state, `updated_at`) and never from
    the message body: the seen-events store keeps it, and it must not hold the code, even hashed.
    """

    event_name: str = Field(min_length=1, max_length=64)
    data: dict[str, Any]

    @property
    def event_id(self) -> str:
        data = self.data
        parts = [self.event_name, str(data.get("id")), data.get("status"), data.get("error"),
                 data.get("is_unsubscribed"), data.get("updated_at")]
        return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], value: object, what: str) -> M:
    """`value` as `model`, or `SmsUnavailableError` naming the first field that does not fit
    (never its value: a body may hold the code)."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise SmsUnavailableError(f"Kimoby sent a body that is not its model ({what}, {misfit(exc)})") from None
