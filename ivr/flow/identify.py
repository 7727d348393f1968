"""The `identify` route: agents and board staff learn who holds a found key."""

from __future__ import annotations

from ivr.backends.kimvoice import IdentifiedKeyHolder
from ivr.errors import ApiError, ErrorCode
from ivr.flow.dialog import ATTEMPTS, Dialog, EndCall, TooManyAttempts
from ivr.flow.services import Services
from ivr.flow.validators import is_key_number
from ivr.logging import mask_code
from ivr.records import Outcome

AGAIN, ANOTHER, END = "1", "2", "9"


async def identify(d: Dialog, s: Services) -> Outcome:
    await d.call.answer()
    while True:
        holder = await look_up(d, s)
        await tell(d, holder)
        if not await after_result(d, holder):
            raise EndCall(Outcome.IDENTIFIED)


async def look_up(d: Dialog, s: Services) -> IdentifiedKeyHolder:
    for _ in range(ATTEMPTS):
        d.step("identify-enter-key-number")
        entered = await d.ask("identify-enter-key-number", max_digits=10, valid=is_key_number)
        key_number = int(entered)  # `0123456` is key 123456, as on the keybox route
        d.record.key_number, d.record.key_entered = None, mask_code(str(key_number))
        d.step("identify-key-holder")
        try:
            holder = await d.backend("IdentifyKeyHolder", s.kimvoice.identify_key_holder(key_number))
        except ApiError as exc:
            if exc.code != ErrorCode.KEY_NOT_FOUND:
                raise
        else:
            d.record.key_number = key_number
            return holder
        await d.play("unknown-key")
    raise TooManyAttempts("identify-key-holder", silent=False)


async def tell(d: Dialog, holder: IdentifiedKeyHolder) -> None:
    d.step("identify-result")
    await d.play("identify-result-intro")
    await d.speak(holder.name)
    await d.speak(holder.office_name or "")
    phone = "".join(c for c in holder.office_phone or "" if c.isascii() and c.isdecimal())
    if phone:
        await d.say_digits(phone)


async def after_result(d: Dialog, holder: IdentifiedKeyHolder) -> bool:
    """The identify menu: True when the caller wants another key."""
    while True:
        d.step("identify-menu")
        try:
            choice = await d.menu("identify-menu", AGAIN + ANOTHER + END, attempts=2)
        except TooManyAttempts:
            return False
        if choice != AGAIN:
            return choice == ANOTHER
        await tell(d, holder)
