"""Codelocks Connect's answers, its lock models and its NetCode durations; the NetCode we hand out.

Checked against sources besides the guide, which lists neither the duration ids nor a real answer:

* github.com/drinkynet/codelocks-api@0346b40 `src/Methods/Netcode.php` (a PHP wrapper of this
  API): duration ids 0-11 are 1-12 hours, 12-18 are 1-7 days; the NetCode is `ActualNetcode`.
  Its `tests/DurationsTest.php` reads the durations list's id as `DurationId`, the guide as
  `DurationID`: both are read here.
* Codelocks' knowledge base ("NetCode Modes Explained"): standard NetCodes last 1-12 hours or
  1-7 days; the KL1060 C2 ("KL1000 NetCode C2") has 7-digit NetCodes, the KL1060 before it 6.
* A project's notes from live calls (April 2026, a KL1200N as `KL1060G3`): ids 0-11 are 1-12
  hours, and 12 is refused for `KL1060G3`; so that model takes hour durations only here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field

from ivr.logging import mask_code

__all__ = [
    "DURATIONS",
    "LOCK_MODELS",
    "Duration",
    "DurationInfo",
    "LockModel",
    "NetCode",
    "NetCodeAnswer",
    "durations_of",
]

LockModel = Literal["KL1060", "KL1060C2", "KL1060G3", "KL1550", "K3CONNECT"]
"""The `lockmodel` values the guide allows."""
LOCK_MODELS: tuple[LockModel, ...] = ("KL1060", "KL1060C2", "KL1060G3", "KL1550", "K3CONNECT")


@dataclass(frozen=True)
class Duration:
    """How long a NetCode of one duration id lasts: hours, or whole days (which start at midnight)."""

    hours: int = 0
    days: int = 0

    @property
    def in_days(self) -> bool:
        return self.days > 0

    def __str__(self) -> str:
        count, unit = (self.days, "day") if self.in_days else (self.hours, "hour")
        return f"{count} {unit}{'s' if count != 1 else ''}"


DURATIONS: dict[int, Duration] = {
    **{hours - 1: Duration(hours=hours) for hours in range(1, 13)},
    **{11 + days: Duration(days=days) for days in range(1, 8)},
}
"""The standard NetCode duration ids: 0-11 for 1-12 hours, 12-18 for 1-7 days."""

_HOUR_IDS = frozenset(i for i, d in DURATIONS.items() if not d.in_days)


def durations_of(model: LockModel) -> frozenset[int]:
    """The duration ids a lock model takes (`ivr netcode` can ask Codelocks for the real list)."""
    return _HOUR_IDS if model == "KL1060G3" else frozenset(DURATIONS)


def _text(value: object) -> object:
    """Codelocks' "string" fields, which a .NET or PHP server may send as numbers."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _count(value: object) -> object:
    return 0 if value in (None, "") else value


_Text = Annotated[str, BeforeValidator(_text)]
_Count = Annotated[int, BeforeValidator(_count), Field(ge=0, le=10_000)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class NetCodeAnswer(_Wire):
    """The answer of `GET /n/1/netcode/{id}`; only the NetCode itself is required.

    The guide's example spells it `ActualNetcode`, its prose `ActualNetCode`: either is read.
    Digits only: the caller hears it digit by digit, so anything else is not a NetCode.
    """

    netcode: Annotated[str, BeforeValidator(_text), Field(
        validation_alias=AliasChoices("ActualNetcode", "ActualNetCode"), pattern=r"^[0-9]{4,12}$", repr=False)]
    start_date: _Text = Field("", validation_alias=AliasChoices("Startdate", "StartDate"), max_length=64)
    duration_hours: _Count = Field(0, validation_alias=AliasChoices("DurationHours", "Durationhours"))
    duration_days: _Count = Field(0, validation_alias=AliasChoices("DurationDays", "Durationdays"))
    mode: _Text = Field("", validation_alias=AliasChoices("Mode", "mode"), max_length=64)
    expires: _Text = Field("", validation_alias=AliasChoices("Expires", "expires"), max_length=64)
    result_status: _Text = Field("", validation_alias=AliasChoices("Resultstatus", "ResultStatus"), max_length=64)


class DurationInfo(_Wire):
    """One row of `GET /u/1/durations?operation=DURATIONS`: a duration id a lock model takes."""

    duration_id: int = Field(validation_alias=AliasChoices("DurationID", "DurationId"), ge=0, le=1000)
    mode: _Text = Field("", validation_alias=AliasChoices("Mode", "mode"), max_length=64)
    sub_mode: _Text = Field("", validation_alias=AliasChoices("SubMode", "Submode"), max_length=64)
    duration_days: _Count = Field(0, validation_alias=AliasChoices("DurationDays", "Durationdays"))
    duration_hours: _Count = Field(0, validation_alias=AliasChoices("DurationHours", "Durationhours"))
    lock_models: _Text = Field("", validation_alias=AliasChoices("LockModels", "LockModel"), max_length=256)


@dataclass(frozen=True)
class NetCode:
    """A NetCode for one lock, start and duration, and until when it may be handed out.

    `start` is local to the lock (`YYYY-MM-DD HH:MM`); `valid_until` is the end of its period
    (the hour or day of `start`), in UTC: after it a caller gets the NetCode of the next period.
    The code never shows in a repr: `masked` is what a log or a record may hold.
    """

    lock_id: str
    start: str
    duration: int
    valid_until: datetime
    code: str = field(repr=False)

    @property
    def masked(self) -> str:
        return mask_code(self.code)

    def __repr__(self) -> str:
        return (f"NetCode(lock_id={self.lock_id!r}, start={self.start!r}, duration={self.duration}, "
                f"valid_until={self.valid_until.isoformat()}, code={self.masked!r})")
