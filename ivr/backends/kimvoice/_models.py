"""KimVoice's JSON models, as `docs/kimvoice-wire.md` describes them.

Models read camelCase and PascalCase keys (the service is .NET) and ignore unknown fields; they
write camelCase. Where the real service differs, only this module should have to change.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

from pydantic import AliasChoices, AliasGenerator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel, to_pascal


def _aliases(name: str) -> AliasChoices:
    return AliasChoices(to_camel(name), to_pascal(name), name)


class WireModel(BaseModel):
    """Base of every KimVoice model: camelCase out, camelCase or PascalCase in."""

    model_config = ConfigDict(
        alias_generator=AliasGenerator(validation_alias=_aliases, serialization_alias=to_camel),
        populate_by_name=True,
        extra="ignore",
        frozen=True,
    )

    def to_wire(self) -> dict[str, object]:
        """The JSON-ready dict KimVoice would send."""
        return self.model_dump(mode="json", by_alias=True)


def _int_to_str(value: object) -> object:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


# A code is read digit by digit to the caller, so anything but digits is a bad response.
Code = Annotated[str, BeforeValidator(_int_to_str), Field(pattern=r"^[0-9]{1,20}$")]


class OperationalMode(str, Enum):
    NORMAL = "Normal"
    DISASTER_RECOVERY = "DisasterRecovery"


class CodeType(str, Enum):
    """Which code a key holder asks for; the service also accepts 1 or 2."""

    UPDATE = "Update"
    CBS = "Cbs"

    @classmethod
    def _missing_(cls, value: object) -> CodeType | None:
        numbers = {1: cls.UPDATE, 2: cls.CBS, "1": cls.UPDATE, "2": cls.CBS}
        if value in numbers:
            return numbers[value]
        if isinstance(value, str):
            return next((m for m in cls if m.value.lower() == value.lower()), None)
        return None


class HealthCheck(WireModel):
    operational_mode: OperationalMode
    message: str | None = None


class Member(WireModel):
    member_number: int
    name: str


class KeyHolder(WireModel):
    key_number: int
    primary_member: int
    name: str
    members: list[Member] = Field(min_length=1)
    pods: list[Annotated[int, Field(ge=1, le=2)]] = Field(min_length=1)
    cbs_instructions: str | None = None


class KeyHolders(WireModel):
    key_holders: list[KeyHolder]


class IdentifiedKeyHolder(WireModel):
    key_number: int
    name: str
    office_name: str | None = None
    office_phone: str | None = None
    member_number: int | None = None


class Validation(WireModel):
    is_authorized: bool
    key_number: int
    member_number: int
    pod_number: int
    code_type: CodeType


class UpdateCode(WireModel):
    update_code: Code
    instructions: str | None = None
    expires_utc: datetime | None = None


class CbsCode(WireModel):
    cbs_code: Code
    expires_utc: datetime | None = None


class ApiErrorBody(WireModel):
    error_code: int
    message: str = ""
    user_message: str | None = None

