"""The sandbox's seeded test keys: one for each branch of the call flow.

QA staff dial these; `ivr sandbox` prints them at start (`seed_key_lines`), as the README's table has them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ivr.backends.kimvoice._models import IdentifiedKeyHolder, KeyHolder, Member
from ivr.errors import ErrorCode


@dataclass(frozen=True)
class Refusal:
    """Why ValidateKeyHolder refuses a key, as an ApiError."""

    error_code: ErrorCode
    message: str
    user_message: str | None = None


@dataclass(frozen=True)
class SeedKey:
    key_number: int
    pin: str
    purpose: str
    records: tuple[KeyHolder, ...]
    identity: IdentifiedKeyHolder
    refusal: Refusal | None = None


@dataclass(frozen=True)
class SeedBox:
    box_number: int
    shackle_code: str
    purpose: str = field(default="")


_BOARD = Member(member_number=5001, name="Capital Region Board of Realtors")
_LAKESIDE = Member(member_number=7002, name="Lakeside Association")
_COAST = Member(member_number=8003, name="Coastal Multiple Listing Service")
_CBS = "Press the up arrow, enter the code, then press the up arrow again."


def _holder(key: int, name: str, members: tuple[Member, ...], pods: tuple[int, ...]) -> KeyHolder:
    return KeyHolder(
        key_number=key,
        primary_member=members[0].member_number,
        name=name,
        members=list(members),
        pods=list(pods),
        cbs_instructions=_CBS,
    )


def _identity(key: int, name: str, office: str, phone: str, member: int = 5001) -> IdentifiedKeyHolder:
    return IdentifiedKeyHolder(key_number=key, name=name, office_name=office, office_phone=phone, member_number=member)


def _key(key: int, pin: str, purpose: str, name: str, office: str, phone: str,
         records: tuple[KeyHolder, ...] | None = None, refusal: Refusal | None = None) -> SeedKey:
    records = records or (_holder(key, name, (_BOARD,), (1,)),)
    return SeedKey(key, pin, purpose, records, _identity(key, name, office, phone), refusal)


SEED_KEYS: tuple[SeedKey, ...] = (
    _key(123456, "2580", "one key record, one member, one pod: the plain update-code call",
         "Jane Agent", "Lakeside Realty", "+15555550123"),
    _key(234567, "1357", "several members (5001, 7002, 8003) and both pods",
         "Omar Broker", "Harbor Homes", "+15555550145",
         records=(_holder(234567, "Omar Broker", (_BOARD, _LAKESIDE, _COAST), (1, 2)),)),
    _key(345678, "2468", "two key records for one key and PIN (the caller chooses one)",
         "Sam Seller", "Northside Properties", "+15555550167",
         records=(_holder(345678, "Sam Seller", (_BOARD,), (1,)),
                  _holder(345678, "Sam Seller, Lakeside office", (_LAKESIDE,), (2,)))),
    _key(456789, "1470", "ValidateKeyHolder refuses with 2001 (non-payment), with a userMessage",
         "Pat Pastdue", "Budget Realty", "+15555550189",
         refusal=Refusal(ErrorCode.NON_PAYMENT, "Key holder is not authorized: account past due.",
                         "Your account is past due. Please contact your board office.")),
    _key(567890, "3690", "ValidateKeyHolder refuses with 2002 (key not assigned), no userMessage",
         "Una Assigned", "Vacant Desk Realty", "+15555550111",
         refusal=Refusal(ErrorCode.KEY_NOT_ASSIGNED, "Key holder is not authorized: key not assigned.")),
    _key(678901, "1590", "ValidateKeyHolder refuses with 2003 (key holder suspended), with a userMessage",
         "Sue Spended", "Paused Properties", "+15555550133",
         refusal=Refusal(ErrorCode.KEY_HOLDER_SUSPENDED, "Key holder is not authorized: suspended.",
                         "Your key privileges are suspended. Please call your board office.")),
)

SEED_BOXES: tuple[SeedBox, ...] = (
    SeedBox(90210, "4321", "a key box for call-before-showing codes"),
    SeedBox(80302, "9876", "a second key box"),
)

#: A key number IdentifyKeyHolder and GetKeyHolders do not know (ApiError 1002 / 1001).
UNKNOWN_KEY = 99999


def seed_key_lines() -> list[str]:
    """The lines `ivr sandbox` prints at start: every key QA can dial, the unknown one included."""
    lines = [f"key {key.key_number}  PIN {key.pin}  {key.purpose}" for key in SEED_KEYS]
    lines.append(f"key {UNKNOWN_KEY}  PIN any   unknown key: GetKeyHolders ApiError 1001, IdentifyKeyHolder 1002")
    lines.extend(f"box {box.box_number}  shackle {box.shackle_code}  {box.purpose}" for box in SEED_BOXES)
    return lines
