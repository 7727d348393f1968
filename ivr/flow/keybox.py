"""The `keybox` route: key holders get update codes, call-before-showing codes and, where
Codelocks is configured, lock NetCodes; where Kimoby is, the code again by text message.

Each function is a step of `docs/call-script.md`, in the order the caller meets them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from ivr.backends.kimvoice import CodeType, KeyHolder, KeyHolders, OperationalMode
from ivr.errors import ApiError, ChannelHangupError, ErrorCode, NetCodeNotAllowedError, NotAuthorizedError, SmsError
from ivr.flow.dialog import ATTEMPTS, Dialog, EndCall, GaveUp, TooManyAttempts
from ivr.flow.guard import SignInLocked
from ivr.flow.services import Services
from ivr.flow.texts import code_text
from ivr.flow.validators import is_box_number, is_four_digits, is_key_number
from ivr.logging import mask_code
from ivr.records import Outcome, TextMessage

T = TypeVar("T")

UPDATE, CBS, NETCODE = "1", "2", "3"
AGAIN, ANOTHER, TEXT, END = "1", "2", "3", "9"


@dataclass(frozen=True)
class CodeRead:
    """A code the caller was given: what reads it (again), and the words of a text that holds it."""

    read: Callable[[], Awaitable[None]]
    text: str


async def keybox(d: Dialog, s: Services) -> Outcome:
    await d.call.answer()
    await start_of_call(d, s)
    key_number, holders = await sign_in(d, s)
    holder = await choose_key_holder(d, holders.key_holders)
    member = await choose_member(d, holder)
    pod = await choose_pod(d, holder)
    return await codes(d, s, key_number, holder, member, pod)


async def start_of_call(d: Dialog, s: Services) -> None:
    d.step("health-check")
    health = await d.backend("HealthCheck", s.kimvoice.health_check(timeout=s.settings.kimvoice_health_timeout))
    if health.operational_mode is OperationalMode.DISASTER_RECOVERY:
        await d.play("dr-notice")
        await d.speak(health.message or "")
    d.step("welcome")
    await d.play("welcome")
    await choose_language(d, s)


async def choose_language(d: Dialog, s: Services) -> None:
    languages = s.settings.languages
    if len(languages) < 2:
        return
    d.step("choose-language")
    options = "".join(str(i) for i in range(1, len(languages) + 1))
    start = d.record.language
    escape = d.escape(options)

    async def offer() -> str:
        pressed = ""
        for digit, language in zip(options, languages, strict=True):
            await d.call.set_language(language)
            pressed = pressed or await d.play("choose-language", escape)
            pressed = pressed or await d.say_digits(digit, escape)
            if pressed:
                break
        await d.call.set_language(start)
        return pressed or await d.call.wait_for_digit(s.settings.entry_timeout_ms)

    try:
        chosen = languages[int(await d.choice("choose-language", options, offer)) - 1]
    except TooManyAttempts:
        chosen = start  # a caller who does not choose keeps the line's language
    await d.call.set_language(chosen)
    d.record.language = chosen


async def sign_in(d: Dialog, s: Services) -> tuple[int, KeyHolders]:
    """Key number and PIN until KimVoice knows the pair; every guess counted before it is sent."""
    caller = s.guard.caller_subject(d.call.caller_id)
    await unless_locked(d, s.guard.check(caller))
    refused = False
    for _ in range(ATTEMPTS):
        d.step("enter-key-number")
        entered = await gave_up_if(refused, d.ask("enter-key-number", max_digits=10, valid=is_key_number))
        key_number = int(entered)  # `0123456` is key 123456: one record entry, one lockout count
        d.record.key_number, d.record.key_entered = None, mask_code(str(key_number))
        key = s.guard.key_subject(str(key_number))
        await unless_locked(d, s.guard.check(key, caller))
        d.step("enter-pin")
        pin = await d.ask("enter-pin", max_digits=4, valid=is_four_digits)
        d.step("get-key-holders")
        if s.guard.paced:
            await d.play("please-wait")  # the line is under a guessing attack: a turn may take seconds
        guess = await unless_locked(d, d.unless_hung_up(s.guard.reserve(key, caller)))
        try:
            holders = await d.backend("GetKeyHolders", s.kimvoice.get_key_holders(key_number, pin))
        except Exception as exc:
            locked_now = await s.guard.failed(guess)  # no answer, or a hang-up, counts too
            if not (isinstance(exc, ApiError) and exc.code in (ErrorCode.PIN_MISMATCH, ErrorCode.KEY_NOT_FOUND)):
                raise
        else:
            d.record.key_number = key_number
            await s.guard.signed_in(guess)
            return key_number, holders
        if locked_now is not None:
            await d.play("key-locked")
            raise EndCall(Outcome.KEY_LOCKED, f"{locked_now.kind} locked by this failure")
        await gave_up_if(True, d.play("invalid-credentials"))
        refused = True
    raise TooManyAttempts("key-and-pin", silent=False)


async def gave_up_if(refused: bool, step: Awaitable[T]) -> T:
    """Run `step`; when `refused`, a hang-up during it records `invalid_credentials`: the caller
    put the phone down on `invalid-credentials` (or on the key number question after it), so
    the call's last word was wrong credentials, which `caller_hangup` would hide."""
    try:
        return await step
    except ChannelHangupError as exc:
        if refused and not isinstance(exc, GaveUp):
            raise GaveUp(Outcome.INVALID_CREDENTIALS, "hung up after invalid-credentials") from exc
        raise


async def unless_locked(d: Dialog, guarded: Awaitable[T]) -> T:
    """What the guard answers; `key-locked` and goodbye when the key number or the calling
    number may not try now."""
    try:
        return await guarded
    except SignInLocked as locked:
        await d.play("key-locked")
        raise EndCall(Outcome.KEY_LOCKED, f"{locked.subject.kind} locked") from None


async def choose_key_holder(d: Dialog, records: list[KeyHolder]) -> KeyHolder:
    if len(records) == 1:
        return records[0]
    d.step("choose-key-holder")
    return records[await d.choose("choose-key-holder", [r.name for r in records])]


async def choose_member(d: Dialog, holder: KeyHolder) -> int:
    if len(holder.members) == 1:
        return holder.members[0].member_number
    d.step("choose-member")
    return holder.members[await d.choose("choose-member", [m.name for m in holder.members])].member_number


async def choose_pod(d: Dialog, holder: KeyHolder) -> int:
    if len(holder.pods) == 1:
        return holder.pods[0]
    d.step("choose-pod")
    return int(await d.menu("choose-pod", "".join(str(p) for p in sorted(holder.pods))))


async def codes(d: Dialog, s: Services, key_number: int, holder: KeyHolder, member: int, pod: int) -> Outcome:
    """The code-type menu, the code, and the after-code menu, until the caller is done."""
    while True:
        d.step("choose-code-type")
        if s.netcodes is not None:
            choice = await d.menu("choose-code-type-netcode", UPDATE + CBS + NETCODE, repeat=True)
        else:
            choice = await d.menu("choose-code-type", UPDATE + CBS, repeat=True)
        if choice == NETCODE:
            got = await lock_netcode(d, s, member)
            if got is None:
                continue  # not allowed on that lock: the code types again
            outcome = Outcome.NETCODE_READ
        else:
            code_type = CodeType.UPDATE if choice == UPDATE else CodeType.CBS
            d.step("validate-key-holder")
            revalidate = partial(validate, d, s, key_number, member, pod, code_type)
            await revalidate()
            if code_type is CodeType.UPDATE:
                got = await update_code(d, s, key_number, holder, member, pod, revalidate)
                outcome = Outcome.UPDATE_CODE_READ
            else:
                got, outcome = await cbs_code(d, s, key_number, holder, revalidate), Outcome.CBS_CODE_READ
        await got.read()
        if not await another_code(d, s, key_number, got):
            raise EndCall(outcome)


async def validate(d: Dialog, s: Services, key_number: int, member: int, pod: int, code_type: CodeType) -> None:
    try:
        await d.backend("ValidateKeyHolder", s.kimvoice.validate_key_holder(key_number, member, pod, code_type))
    except NotAuthorizedError as exc:
        if exc.user_message:
            await d.speak(exc.user_message)
        else:
            await d.play("not-authorized")
        await d.offer_operator()
        # error_code 0: no ApiError, a 200 whose isAuthorized was false (the client's refusal)
        raise EndCall(Outcome.NOT_AUTHORIZED, f"ApiError {exc.error_code}" if exc.error_code
                      else "isAuthorized false") from None


async def validated(
    d: Dialog, method: str, fetch: Callable[[], Awaitable[T]], revalidate: Callable[[], Awaitable[None]]
) -> T:
    """`fetch` a code; if KimVoice has forgotten the validation (2004: the token was renewed
    since), validate once more and fetch again."""
    try:
        return await d.backend(method, fetch())
    except ApiError as exc:
        if exc.code != ErrorCode.NOT_VALIDATED:
            raise
    await revalidate()
    return await d.backend(method, fetch())


async def update_code(
    d: Dialog, s: Services, key_number: int, holder: KeyHolder, member: int, pod: int,
    revalidate: Callable[[], Awaitable[None]],
) -> CodeRead:
    """Fetch the update code; return what reads it to the caller (again, if asked)."""
    d.step("get-update-code")
    code = await validated(
        d, "GetUpdateCode", partial(s.kimvoice.get_update_code, key_number, holder.primary_member, member, pod),
        revalidate,
    )

    async def read() -> None:
        d.step("read-update-code")
        await d.read_code("your-update-code-is", code.update_code)
        await d.speak(code.instructions or "")

    return CodeRead(read, code_text(s.catalog.text("your-update-code-is", d.record.language), code.update_code,
                                    code.instructions or ""))


async def cbs_code(
    d: Dialog, s: Services, key_number: int, holder: KeyHolder, revalidate: Callable[[], Awaitable[None]]
) -> CodeRead:
    """Box number, shackle code, the CBS code; return what reads it to the caller."""
    box = await ask_box_number(d)
    shackle = await ask_shackle_code(d)
    for attempt in range(1, ATTEMPTS + 1):
        d.step("get-cbs-code")
        try:
            code = await validated(
                d, "GetCbsCode", partial(s.kimvoice.get_cbs_code, box, shackle, key_number, holder.primary_member),
                revalidate,
            )
            break
        except ApiError as exc:
            if exc.code not in (ErrorCode.BOX_NOT_FOUND, ErrorCode.SHACKLE_MISMATCH):
                raise
            wrong_box = exc.code == ErrorCode.BOX_NOT_FOUND
            await d.play("invalid-box" if wrong_box else "invalid-shackle")
            if attempt == ATTEMPTS:
                raise TooManyAttempts("get-cbs-code", silent=False) from None
            if wrong_box:
                box = await ask_box_number(d)
            else:
                shackle = await ask_shackle_code(d)

    async def read() -> None:
        d.step("read-cbs-code")
        await d.read_code("your-cbs-code-is", code.cbs_code)
        await d.speak(holder.cbs_instructions or "")

    return CodeRead(read, code_text(s.catalog.text("your-cbs-code-is", d.record.language), code.cbs_code,
                                    holder.cbs_instructions or ""))


async def lock_netcode(d: Dialog, s: Services, member: int) -> CodeRead | None:
    """The lock number, then its NetCode; None when the member may not open that lock.

    An unknown lock number is an invalid entry (asked again). Codelocks failing, or its quota
    used up, ends the call as any backend failure does (`system-unavailable`, then an agent).
    """
    netcodes = s.netcodes
    assert netcodes is not None, "offered only with Codelocks"
    d.step("enter-lock-number")
    lock = await d.ask("enter-lock-number", max_digits=10, valid=netcodes.knows)
    d.step("get-netcode")
    try:
        netcode = await d.backend("GetNetCode", netcodes.netcode(lock, member))
    except NetCodeNotAllowedError:
        await d.play("not-authorized")
        return None

    async def read() -> None:
        d.step("read-netcode")
        await d.read_code("your-netcode-is", netcode)

    return CodeRead(read, code_text(s.catalog.text("your-netcode-is", d.record.language), netcode))


async def ask_box_number(d: Dialog) -> int:
    d.step("enter-box-number")
    return int(await d.ask("enter-box-number", max_digits=10, valid=is_box_number))


async def ask_shackle_code(d: Dialog) -> str:
    d.step("enter-shackle-code")
    return await d.ask("enter-shackle-code", max_digits=4, valid=is_four_digits)


async def another_code(d: Dialog, s: Services, key_number: int, got: CodeRead) -> bool:
    """The after-code menu: True when the caller wants another code. With Kimoby, 3 sends the
    code by text message, once: after `sms-sent` the menu no longer offers it."""
    texted = False
    while True:
        d.step("after-code-menu")
        offer_text = s.texts is not None and not texted
        try:
            if offer_text:
                choice = await d.menu("after-code-menu-sms", AGAIN + ANOTHER + TEXT + END, attempts=2)
            else:
                choice = await d.menu("after-code-menu", AGAIN + ANOTHER + END, attempts=2)
        except TooManyAttempts:
            return False  # no answer twice: the code was read, say goodbye
        if choice == TEXT:
            texted = await text_code(d, s, key_number, got.text)
        elif choice == AGAIN:
            await got.read()
        else:
            return choice == ANOTHER


async def text_code(d: Dialog, s: Services, key_number: int, text: str) -> bool:
    """Send the code by text message: `sms-sent`, or `sms-unavailable` (and the menu again)."""
    texts = s.texts
    assert texts is not None, "offered only with Kimoby"
    d.step("send-sms")
    try:
        message_id = await d.backend("SendText", texts.send(key_number, text))
    except SmsError:
        await d.play("sms-unavailable")
        return False
    d.record.texts.append(TextMessage(id=message_id))
    await d.play("sms-sent")
    return True
