"""KimVoice's methods: their paths, parameters with the seed's ranges, and result models.

One table serves the client (what to send and how to validate it first), the sandbox (what to
accept, and the generic 400 for the rest) and the `ivr kimvoice` command (its subcommands).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from ivr.backends.kimvoice._models import (
    CbsCode,
    CodeType,
    HealthCheck,
    IdentifiedKeyHolder,
    KeyHolders,
    UpdateCode,
    Validation,
    WireModel,
)
from ivr.errors import InvalidParameterError

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails  # pydantic's own core, installed with it

INT32_MAX = 2_147_483_647


def _four_digit_pattern(value: str) -> str:
    # The seed's .NET [RegularExpression(@"[0-9\s]{4,4}$")] must match the whole value,
    # so it admits any four characters that are ASCII digits or white space.
    if not re.fullmatch(r"[0-9\s]{4}", value):
        raise ValueError("must be 4 characters, digits or spaces")
    return value


KeyNumber = Annotated[int, Field(ge=10_000, le=INT32_MAX, description="key number, 10000 to 2147483647")]
MemberNumber = Annotated[int, Field(ge=1, le=INT32_MAX, description="member number, 1 to 2147483647")]
PodNumber = Annotated[int, Field(ge=1, le=2, description="pod number, 1 or 2")]
BoxNumber = Annotated[int, Field(ge=1, le=INT32_MAX, description="key box number, 1 to 2147483647")]
FourDigits = Annotated[str, AfterValidator(_four_digit_pattern)]


class Params(BaseModel):
    """Query parameters of one method; camelCase on the wire, any case accepted by the sandbox."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    def to_query(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.model_dump(mode="json", by_alias=True).items()}

    @classmethod
    def parse(cls, method: str, values: dict[str, object]) -> Params:
        """Validate `values`, or raise `InvalidParameterError` that names fields, never values."""
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'parameters'}: {_plain(e)}"
                for e in exc.errors(include_url=False, include_input=False)
            )
            raise InvalidParameterError(f"{method}: {problems}") from None


def _plain(error: ErrorDetails) -> str:
    return error["msg"].removeprefix("Value error, ")


class NoParams(Params):
    pass


class KeyHoldersParams(Params):
    key_number: KeyNumber
    pin: FourDigits = Field(repr=False, description="PIN, 4 digits")


class IdentifyParams(Params):
    key_number: KeyNumber


class ValidateParams(Params):
    key_number: KeyNumber
    member_number: MemberNumber
    pod_number: PodNumber
    code_type: CodeType = Field(description="Update or Cbs")


class UpdateCodeParams(Params):
    key_number: KeyNumber
    primary_member: MemberNumber
    update_member: MemberNumber
    pod_number: PodNumber


class CbsCodeParams(Params):
    box_number: BoxNumber
    shackle_code: FourDigits = Field(repr=False, description="shackle code, 4 digits")
    key_number: KeyNumber
    primary_member: MemberNumber


R = TypeVar("R", bound=WireModel)


@dataclass(frozen=True)
class Method(Generic[R]):
    """One KimVoice method: `name` as KimVoice spells it, `path` below `api/V1/`; `R` its result."""

    name: str
    path: str
    params: type[Params]
    result: type[R]
    attribute: str  # the client's method of the same name, snake_case


HEALTH_CHECK = Method("HealthCheck", "HealthCheck", NoParams, HealthCheck, "health_check")
GET_KEY_HOLDERS = Method("GetKeyHolders", "Key/GetKeyHolders", KeyHoldersParams, KeyHolders, "get_key_holders")
IDENTIFY_KEY_HOLDER = Method(
    "IdentifyKeyHolder", "Key/IdentifyKeyHolder", IdentifyParams, IdentifiedKeyHolder, "identify_key_holder"
)
VALIDATE_KEY_HOLDER = Method(
    "ValidateKeyHolder", "Key/ValidateKeyHolder", ValidateParams, Validation, "validate_key_holder"
)
GET_UPDATE_CODE = Method("GetUpdateCode", "Key/GetUpdateCode", UpdateCodeParams, UpdateCode, "get_update_code")
GET_CBS_CODE = Method("GetCbsCode", "KeyBox/GetCbsCode", CbsCodeParams, CbsCode, "get_cbs_code")

METHODS: tuple[Method[Any], ...] = (
    HEALTH_CHECK,
    GET_KEY_HOLDERS,
    IDENTIFY_KEY_HOLDER,
    VALIDATE_KEY_HOLDER,
    GET_UPDATE_CODE,
    GET_CBS_CODE,
)
LOG_ON_PATH = "Token/LogOn"
