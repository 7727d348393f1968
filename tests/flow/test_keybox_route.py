"""The keybox route, whole, over an in-memory call: `run_call` with a fake KimVoice, the real
sign-in guard over a real SQLite store. What the caller hears and the record, exactly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from support.memory_call import MemoryCall

from ivr.backends.kimvoice import (
    CbsCode,
    CodeType,
    HealthCheck,
    IdentifiedKeyHolder,
    KeyHolder,
    KeyHolders,
    Member,
    OperationalMode,
    UpdateCode,
    Validation,
)
from ivr.catalog import PromptCatalog, default_prompts_dir
from ivr.errors import ApiError, ErrorCode, NotAuthorizedError
from ivr.flow.guard import SignInGuard
from ivr.flow.runner import run_call
from ivr.flow.services import Services, guard_limits
from ivr.install_key import install_key
from ivr.logging import mask_code
from ivr.records import CallRecord, Outcome
from ivr.settings import load_settings
from ivr.sim import Event
from ivr.store import SqliteStore
from ivr.tts import TtsCache

CATALOG = PromptCatalog.load(default_prompts_dir())
OPERATOR = "Queue(keybox-agents)"

UPDATE_INSTRUCTIONS = "Press the power button, enter the code, then press enter."
CBS_INSTRUCTIONS = "Press the up arrow, enter the code, then press the up arrow again."
SUSPENDED = "Your membership is suspended. Please call your board."

ALICE = KeyHolder(key_number=123456, primary_member=5001, name="Alice Agent",
                  members=[Member(member_number=5001, name="Capital Region Board")], pods=[1],
                  cbs_instructions=CBS_INSTRUCTIONS)
BOB = KeyHolder(key_number=234567, primary_member=5001, name="Bob Broker",
                members=[Member(member_number=5001, name="Capital Region Board"),
                         Member(member_number=7002, name="Lakeside Association")], pods=[2, 1])
HOLDERS = {(123456, "2580"): KeyHolders(key_holders=[ALICE]), (234567, "1357"): KeyHolders(key_holders=[BOB])}
BOXES = {90210: "4321"}


def update_code(member: int, pod: int) -> str:
    return f"8{member}{pod}"


def cbs_code(box: int) -> str:
    return f"6{box}"


@dataclass
class FakeKimVoice:
    """The KimVoice methods the keybox steps call, answering from the constants above.

    `fail` holds, per method name, errors to raise first (one per call, in order). Every call
    is noted in `calls` with its arguments. `during` runs inside a method before it answers
    (a hang-up while the request is in flight, say). The `timeout` parameters are the protocol's;
    nothing here waits on a clock."""

    health: HealthCheck = field(default_factory=lambda: HealthCheck(operational_mode=OperationalMode.NORMAL))
    fail: dict[str, list[Exception]] = field(default_factory=dict)
    during: dict[str, Callable[[], None]] = field(default_factory=dict)
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    async def _enter(self, method: str, *args: Any) -> None:
        self.calls.append((method, *args))
        if method in self.during:
            self.during.pop(method)()
            await asyncio.Event().wait()  # the caller has gone: no answer until cancelled
        if self.fail.get(method):
            raise self.fail[method].pop(0)

    async def health_check(self, *, timeout: float | None = None) -> HealthCheck:
        await self._enter("health_check")
        return self.health

    async def get_key_holders(
        self, key_number: int, pin: str, *, timeout: float | None = None,
    ) -> KeyHolders:
        await self._enter("get_key_holders", key_number, pin)
        if (key_number, pin) in HOLDERS:
            return HOLDERS[key_number, pin]
        known = any(key == key_number for key, _ in HOLDERS)
        code = ErrorCode.PIN_MISMATCH if known else ErrorCode.KEY_NOT_FOUND
        raise ApiError("GetKeyHolders", 400, code, "no such key and PIN")

    async def identify_key_holder(
        self, key_number: int, *, timeout: float | None = None,
    ) -> IdentifiedKeyHolder:
        await self._enter("identify_key_holder", key_number)
        if key_number != ALICE.key_number:
            raise ApiError("IdentifyKeyHolder", 400, ErrorCode.KEY_NOT_FOUND, "no such key")
        return IdentifiedKeyHolder(key_number=key_number, name=ALICE.name, office_name="Downtown office",
                                   office_phone="+1 (555) 555-0142")

    async def validate_key_holder(
        self, key_number: int, member_number: int, pod_number: int, code_type: CodeType | str,
        *, timeout: float | None = None,
    ) -> Validation:
        await self._enter("validate_key_holder", key_number, member_number, pod_number, CodeType(code_type))
        return Validation(is_authorized=True, key_number=key_number, member_number=member_number,
                          pod_number=pod_number, code_type=CodeType(code_type))

    async def get_update_code(
        self, key_number: int, primary_member: int, update_member: int, pod_number: int,
        *, timeout: float | None = None,
    ) -> UpdateCode:
        await self._enter("get_update_code", key_number, primary_member, update_member, pod_number)
        return UpdateCode(update_code=update_code(update_member, pod_number), instructions=UPDATE_INSTRUCTIONS)

    async def get_cbs_code(
        self, box_number: int, shackle_code: str, key_number: int, primary_member: int,
        *, timeout: float | None = None,
    ) -> CbsCode:
        await self._enter("get_cbs_code", box_number, shackle_code, key_number, primary_member)
        if box_number not in BOXES:
            raise ApiError("GetCbsCode", 400, ErrorCode.BOX_NOT_FOUND, "no such box")
        if BOXES[box_number] != shackle_code:
            raise ApiError("GetCbsCode", 400, ErrorCode.SHACKLE_MISMATCH, "shackle mismatch")
        return CbsCode(cbs_code=cbs_code(box_number))


@dataclass
class Line:
    """Places in-memory calls into `run_call`; keeps every record the sinks were handed."""

    tmp_path: Path
    store: SqliteStore
    kimvoice: FakeKimVoice = field(default_factory=FakeKimVoice)
    kept: list[CallRecord] = field(default_factory=list)
    guard: SignInGuard | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    """Settings beyond the data directory and the operator (`languages`, say)."""

    def make_call(self, keys: str, **options: Any) -> MemoryCall:
        return MemoryCall(keys, tts_text=self.tts.text_of, catalog=CATALOG, **options)

    @property
    def tts(self) -> TtsCache:
        return TtsCache(self.tmp_path / "tts", None, key=b"memory-call-tests")

    async def call(self, keys: str, *, operator: str = OPERATOR, **options: Any) -> tuple[MemoryCall, CallRecord]:
        call = self.make_call(keys, **options)
        return call, await self.run(call, operator=operator)

    async def run(self, call: MemoryCall, *, operator: str = OPERATOR) -> CallRecord:
        settings = load_settings(data_dir=self.tmp_path, operator=operator, **self.settings)
        if self.guard is None:
            self.guard = SignInGuard(self.store, install_key(self.tmp_path), guard_limits(settings))
            await self.guard.open()

        async def keep(record: CallRecord) -> None:
            self.kept.append(record)

        kimvoice: Any = self.kimvoice  # the methods the routes call, not the whole KimVoice protocol
        services = Services(kimvoice=kimvoice, store=self.store, guard=self.guard, tts=self.tts,
                            settings=settings, sinks=[keep])
        before = len(self.kept)
        record = await run_call(call, services)
        assert self.kept[before:] == [record]  # one record per call, whatever happened
        assert call.transcript.notes == []  # the flow kept to the Call protocol
        return record


@pytest.fixture
async def line(tmp_path: Path) -> AsyncIterator[Line]:
    store = await SqliteStore.open(tmp_path / "calls.db")
    try:
        yield Line(tmp_path, store)
    finally:
        await store.close()


def steps(record: CallRecord) -> list[str]:
    return [step.name for step in record.steps]


def backend(record: CallRecord) -> list[tuple[str, str]]:
    return [(call.method, call.result) for call in record.backend]


SIGN_IN = ["answer", "prompt:welcome", "prompt:enter-key-number", "pressed:123456#", "prompt:enter-pin",
           "pressed:2580#"]
SIGN_IN_STEPS = ["health-check", "welcome", "enter-key-number", "enter-pin", "get-key-holders"]
SIGNED_IN = [("HealthCheck", "ok"), ("GetKeyHolders", "ok")]
UPDATE_CODE = update_code(5001, 1)
READ_UPDATE = ["prompt:your-update-code-is", f"digits:{UPDATE_CODE}", f"tts:{UPDATE_INSTRUCTIONS}"]
GOODBYE = ["prompt:goodbye", "hangup:service"]


def transfer(call: MemoryCall, key_shown: str, last_step: str, reason: str) -> list[str]:
    """What the caller's line shows of a transfer (`runner._transfer`): the prompt, the variables an
    agent's screen reads, the hand-over."""
    return ["prompt:transferring", f"variable:IVR_KEY_NUMBER={key_shown}", f"variable:IVR_LAST_STEP={last_step}",
            f"variable:IVR_OUTCOME={reason}", f"variable:IVR_CALL_ID={call.call_id}", f"transfer:{OPERATOR}"]


async def test_update_code_happy_path(line: Line) -> None:
    call, record = await line.call("123456#2580# 1 9")

    assert call.heard == [*SIGN_IN, "prompt:choose-code-type", "pressed:1", *READ_UPDATE,
                          "prompt:after-code-menu", "pressed:9", *GOODBYE]
    assert call.transcript.said_digits == [UPDATE_CODE]
    assert record.outcome is Outcome.UPDATE_CODE_READ and record.detail is None
    assert steps(record) == [*SIGN_IN_STEPS, "choose-code-type", "validate-key-holder", "get-update-code",
                             "read-update-code", "after-code-menu", "goodbye"]
    assert backend(record) == [*SIGNED_IN, ("ValidateKeyHolder", "ok"), ("GetUpdateCode", "ok")]
    assert (record.key_number, record.key_entered, record.codes) == (123456, "****56", [mask_code(UPDATE_CODE)])
    assert (record.call_id, record.route, record.caller_id, record.language) == (
        call.call_id, "keybox", "+15555550100", "en")
    assert all(step.ms is not None for step in record.steps) and record.ended is not None
    assert line.kimvoice.calls == [
        ("health_check",), ("get_key_holders", 123456, "2580"),
        ("validate_key_holder", 123456, 5001, 1, CodeType.UPDATE), ("get_update_code", 123456, 5001, 5001, 1)]
    assert call.remaining == ""


async def test_several_members_and_both_pods(line: Line) -> None:
    call, record = await line.call("234567#1357# 2 2 1 9")

    assert call.heard == [
        "answer", "prompt:welcome", "prompt:enter-key-number", "pressed:234567#", "prompt:enter-pin", "pressed:1357#",
        "prompt:choose-member", "tts:Capital Region Board", "prompt:press", "digits:1",
        "tts:Lakeside Association", "prompt:press", "digits:2", "pressed:2",
        "prompt:choose-pod", "pressed:2", "prompt:choose-code-type", "pressed:1",
        "prompt:your-update-code-is", f"digits:{update_code(7002, 2)}", f"tts:{UPDATE_INSTRUCTIONS}",
        "prompt:after-code-menu", "pressed:9", *GOODBYE]
    assert steps(record)[5:8] == ["choose-member", "choose-pod", "choose-code-type"]
    assert line.kimvoice.calls[2:] == [("validate_key_holder", 234567, 7002, 2, CodeType.UPDATE),
                                       ("get_update_code", 234567, 5001, 7002, 2)]
    assert record.outcome is Outcome.UPDATE_CODE_READ


async def test_wrong_pin_then_right(line: Line) -> None:
    call, record = await line.call("123456#1111# 123456#2580# 1 9")

    assert call.heard == [
        "answer", "prompt:welcome", "prompt:enter-key-number", "pressed:123456#", "prompt:enter-pin", "pressed:1111#",
        "prompt:invalid-credentials", *SIGN_IN[2:], "prompt:choose-code-type", "pressed:1", *READ_UPDATE,
        "prompt:after-code-menu", "pressed:9", *GOODBYE]
    assert steps(record) == [*SIGN_IN_STEPS[:2], "enter-key-number", "enter-pin", "get-key-holders",
                             "enter-key-number", "enter-pin", "get-key-holders", "choose-code-type",
                             "validate-key-holder", "get-update-code", "read-update-code", "after-code-menu", "goodbye"]
    assert backend(record) == [("HealthCheck", "ok"), ("GetKeyHolders", "ApiError 1001"), ("GetKeyHolders", "ok"),
                               ("ValidateKeyHolder", "ok"), ("GetUpdateCode", "ok")]
    assert record.outcome is Outcome.UPDATE_CODE_READ
    assert line.guard is not None and line.guard.active_locks() == []


async def test_three_wrong_pairs_are_too_many_attempts_and_an_agent(line: Line) -> None:
    call, record = await line.call("123456#1111# 123456#2222# 99999#3333#")

    assert call.transcript.prompts == [
        "welcome", *["enter-key-number", "enter-pin", "invalid-credentials"] * 3, "too-many-attempts", "transferring"]
    assert call.heard[-8:] == ["prompt:invalid-credentials", "prompt:too-many-attempts",
                               *transfer(call, "***99", "get-key-holders", "too_many_attempts")]
    assert backend(record)[1:] == [("GetKeyHolders", "ApiError 1001")] * 2 + [("GetKeyHolders", "ApiError 1002")]
    assert record.outcome is Outcome.TRANSFERRED and record.detail == "at key-and-pin"
    assert call.transcript.transferred_to == OPERATOR and call.ended_by == "transfer"
    assert steps(record)[-1] == "transfer"


async def test_hang_up_on_invalid_credentials_is_recorded_as_such(line: Line) -> None:
    call, record = await line.call("123456#1111#", hangup_on="invalid-credentials")

    assert call.heard[-2:] == ["prompt:invalid-credentials", "hangup:caller"]
    assert (record.outcome, record.detail) == (Outcome.INVALID_CREDENTIALS, "hung up after invalid-credentials")
    assert record.key_number is None and record.key_entered == "****56"


async def test_five_wrong_pins_lock_the_key_across_calls(line: Line) -> None:
    await line.call("123456#1111# 123456#1112# 123456#1113#")
    call, record = await line.call("123456#1114# 123456#1115#")

    assert call.transcript.prompts == ["welcome", "enter-key-number", "enter-pin", "invalid-credentials",
                                       "enter-key-number", "enter-pin", "key-locked", "goodbye"]
    assert (record.outcome, record.detail) == (Outcome.KEY_LOCKED, "key locked by this failure")

    call, record = await line.call("123456#2580#", caller_id="+15555550199")  # the right PIN, too late
    assert call.transcript.prompts == ["welcome", "enter-key-number", "key-locked", "goodbye"]
    assert (record.outcome, record.detail) == (Outcome.KEY_LOCKED, "key locked")
    assert backend(record) == [("HealthCheck", "ok")]  # the PIN was not even asked


async def test_a_key_number_typed_with_leading_zeros_is_kept_as_its_value(line: Line) -> None:
    call, record = await line.call("0099999#1111# *0#")

    assert line.kimvoice.calls[1:] == [("get_key_holders", 99999, "1111")]
    assert call.heard[-6:] == transfer(call, "***99", "enter-key-number", "operator_requested")
    assert record.key_entered == "***99"


async def test_2004_on_get_update_code_validates_again(line: Line) -> None:
    line.kimvoice.fail["get_update_code"] = [
        ApiError("GetUpdateCode", 400, ErrorCode.NOT_VALIDATED, "validate first")]
    call, record = await line.call("123456#2580# 1 9")

    assert call.heard == [*SIGN_IN, "prompt:choose-code-type", "pressed:1", *READ_UPDATE,
                          "prompt:after-code-menu", "pressed:9", *GOODBYE]
    assert backend(record) == [*SIGNED_IN, ("ValidateKeyHolder", "ok"), ("GetUpdateCode", "ApiError 2004"),
                               ("ValidateKeyHolder", "ok"), ("GetUpdateCode", "ok")]
    assert steps(record) == [*SIGN_IN_STEPS, "choose-code-type", "validate-key-holder", "get-update-code",
                             "read-update-code", "after-code-menu", "goodbye"]
    assert record.outcome is Outcome.UPDATE_CODE_READ


async def test_2004_twice_is_system_unavailable(line: Line) -> None:
    line.kimvoice.fail["get_update_code"] = [
        ApiError("GetUpdateCode", 400, ErrorCode.NOT_VALIDATED, "validate first") for _ in range(2)]
    call, record = await line.call("123456#2580# 1 9", operator="")

    assert call.heard[-4:] == ["pressed:1", "prompt:system-unavailable", *GOODBYE]
    assert backend(record)[-2:] == [("ValidateKeyHolder", "ok"), ("GetUpdateCode", "ApiError 2004")]
    assert (record.outcome, record.detail) == (Outcome.UNAVAILABLE, "ApiError")
    assert call.remaining == "9"


async def test_not_authorized_speaks_the_user_message(line: Line) -> None:
    line.kimvoice.fail["validate_key_holder"] = [
        NotAuthorizedError("ValidateKeyHolder", 403, ErrorCode.KEY_HOLDER_SUSPENDED, "suspended", SUSPENDED)]
    call, record = await line.call("123456#2580# 1")

    assert call.heard == [*SIGN_IN, "prompt:choose-code-type", "pressed:1", f"tts:{SUSPENDED}",
                          "prompt:press-zero-for-operator", "silence", *GOODBYE]
    assert (record.outcome, record.detail) == (Outcome.NOT_AUTHORIZED, "ApiError 2003")
    assert backend(record) == [*SIGNED_IN, ("ValidateKeyHolder", "ApiError 2003")]
    assert steps(record)[-2:] == ["validate-key-holder", "goodbye"]
    assert call.requests[-1].timeout_ms == load_settings().entry_timeout_ms // 2


async def test_not_authorized_without_a_message_or_an_operator(line: Line) -> None:
    line.kimvoice.fail["validate_key_holder"] = [
        NotAuthorizedError("ValidateKeyHolder", 403, ErrorCode.NON_PAYMENT, "unpaid")]
    call, record = await line.call("123456#2580# 1", operator="")

    assert call.heard[-5:] == ["prompt:choose-code-type", "pressed:1", "prompt:not-authorized", *GOODBYE]
    assert (record.outcome, record.detail) == (Outcome.NOT_AUTHORIZED, "ApiError 2001")


async def test_not_authorized_then_zero_reaches_an_agent(line: Line) -> None:
    line.kimvoice.fail["validate_key_holder"] = [
        NotAuthorizedError("ValidateKeyHolder", 403, ErrorCode.KEY_NOT_ASSIGNED, "unassigned", SUSPENDED)]
    call, record = await line.call("123456#2580# 1 0")

    assert call.heard == [*SIGN_IN, "prompt:choose-code-type", "pressed:1", f"tts:{SUSPENDED}",
                          "prompt:press-zero-for-operator", "pressed:0",
                          *transfer(call, "123456", "validate-key-holder", "operator_requested")]
    assert (record.outcome, record.detail) == (Outcome.TRANSFERRED, "asked for an agent at press-zero-for-operator")
    assert steps(record)[-2:] == ["validate-key-holder", "transfer"]


async def test_cbs_code_wrong_box_then_right(line: Line) -> None:
    call, record = await line.call("123456#2580# 2 90211# 4321 90210# 9")

    assert call.heard == [
        *SIGN_IN, "prompt:choose-code-type", "pressed:2",
        "prompt:enter-box-number", "pressed:90211#", "prompt:enter-shackle-code", "pressed:4321",
        "prompt:invalid-box", "prompt:enter-box-number", "pressed:90210#",
        "prompt:your-cbs-code-is", f"digits:{cbs_code(90210)}", f"tts:{CBS_INSTRUCTIONS}",
        "prompt:after-code-menu", "pressed:9", *GOODBYE]
    assert steps(record) == [*SIGN_IN_STEPS, "choose-code-type", "validate-key-holder", "enter-box-number",
                             "enter-shackle-code", "get-cbs-code", "enter-box-number", "get-cbs-code",
                             "read-cbs-code", "after-code-menu", "goodbye"]
    assert backend(record) == [*SIGNED_IN, ("ValidateKeyHolder", "ok"), ("GetCbsCode", "ApiError 3001"),
                               ("GetCbsCode", "ok")]
    assert line.kimvoice.calls[2:] == [("validate_key_holder", 123456, 5001, 1, CodeType.CBS),
                                       ("get_cbs_code", 90211, "4321", 123456, 5001),
                                       ("get_cbs_code", 90210, "4321", 123456, 5001)]
    assert (record.outcome, record.codes) == (Outcome.CBS_CODE_READ, [mask_code(cbs_code(90210))])


async def test_cbs_code_wrong_shackle_three_times_is_too_many(line: Line) -> None:
    call, record = await line.call("123456#2580# 2 90210# 1111 2222 3333", operator="")

    assert call.transcript.prompts[4:] == [
        "enter-box-number", "enter-shackle-code", "invalid-shackle", "enter-shackle-code", "invalid-shackle",
        "enter-shackle-code", "invalid-shackle", "too-many-attempts", "goodbye"]
    assert backend(record)[-3:] == [("GetCbsCode", "ApiError 3002")] * 3
    assert (record.outcome, record.detail) == (Outcome.TOO_MANY_ATTEMPTS, "at get-cbs-code")


async def test_after_code_menu_repeats_gives_another_code_and_ends(line: Line) -> None:
    call, record = await line.call("123456#2580# 1 1 2 2 90210#4321 9")

    assert call.heard == [
        *SIGN_IN, "prompt:choose-code-type", "pressed:1", *READ_UPDATE,
        "prompt:after-code-menu", "pressed:1", *READ_UPDATE,
        "prompt:after-code-menu", "pressed:2",
        "prompt:choose-code-type", "pressed:2", "prompt:enter-box-number", "pressed:90210#",
        "prompt:enter-shackle-code", "pressed:4321",
        "prompt:your-cbs-code-is", f"digits:{cbs_code(90210)}", f"tts:{CBS_INSTRUCTIONS}",
        "prompt:after-code-menu", "pressed:9", *GOODBYE]
    assert steps(record) == [
        *SIGN_IN_STEPS, "choose-code-type", "validate-key-holder", "get-update-code", "read-update-code",
        "after-code-menu", "read-update-code", "after-code-menu", "choose-code-type", "validate-key-holder",
        "enter-box-number", "enter-shackle-code", "get-cbs-code", "read-cbs-code", "after-code-menu", "goodbye"]
    assert backend(record) == [*SIGNED_IN, ("ValidateKeyHolder", "ok"), ("GetUpdateCode", "ok"),
                               ("ValidateKeyHolder", "ok"), ("GetCbsCode", "ok")]
    assert record.outcome is Outcome.CBS_CODE_READ  # the last code read
    assert record.codes == [mask_code(UPDATE_CODE), mask_code(cbs_code(90210))]


async def test_after_code_menu_no_answer_twice_ends(line: Line) -> None:
    call, record = await line.call("123456#2580# 1 _ 5")

    assert call.heard[-6:] == ["prompt:after-code-menu", "silence", "prompt:after-code-menu", "pressed:5",
                               *GOODBYE]
    assert "prompt:invalid-entry" not in call.heard  # the second failure ends the menu at once
    assert (record.outcome, record.detail) == (Outcome.UPDATE_CODE_READ, None)


async def test_disaster_recovery_notice(line: Line) -> None:
    line.kimvoice.health = HealthCheck(operational_mode=OperationalMode.DISASTER_RECOVERY,
                                       message="Codes are valid for one day only.")
    call, record = await line.call("123456#2580# 1 9")

    assert call.heard[:5] == ["answer", "prompt:dr-notice", "tts:Codes are valid for one day only.",
                              "prompt:welcome", "prompt:enter-key-number"]
    assert record.outcome is Outcome.UPDATE_CODE_READ


async def test_choose_language_offers_each_language_in_its_own(line: Line) -> None:
    line.settings["languages"] = ["en", "fr", "es"]
    call, record = await line.call("2 123456#2580# 1 9")

    offer = [item for language, digit in (("en", "1"), ("fr", "2"), ("es", "3"))
             for item in (f"language:{language}", "prompt:choose-language", f"digits:{digit}")]
    assert call.heard[:16] == ["answer", "prompt:welcome", *offer, "language:en", "pressed:2", "language:fr",
                               "prompt:enter-key-number", "pressed:123456#"]
    assert call.language == "fr" and record.language == "fr"
    assert steps(record)[:3] == ["health-check", "welcome", "choose-language"]
    assert record.outcome is Outcome.UPDATE_CODE_READ


async def test_choose_language_a_key_during_the_offer_and_no_choice(line: Line) -> None:
    line.settings["languages"] = ["en", "fr"]
    call = line.make_call("123456#2580# 1 9", barge_in=[(Event("prompt", "choose-language"), "2")])
    record = await line.run(call)
    assert call.heard[:9] == ["answer", "prompt:welcome", "language:en", "prompt:choose-language", "pressed:2",
                              "language:en", "language:fr", "prompt:enter-key-number", "pressed:123456#"]
    assert record.language == "fr"

    call, record = await line.call("_ _ _ 123456#2580# 1 9")  # three silences: the line's language
    assert call.heard.count("silence") == 3 and "prompt:invalid-entry" not in call.heard
    assert call.heard[call.heard.index("prompt:enter-key-number") - 1] == "language:en"
    assert record.language == "en" and record.outcome is Outcome.UPDATE_CODE_READ


async def test_zero_during_the_language_offer_reaches_an_agent(line: Line) -> None:
    line.settings["languages"] = ["en", "fr"]
    call = line.make_call("", barge_in=[(Event("prompt", "choose-language"), "0")])
    record = await line.run(call)

    assert call.heard == ["answer", "prompt:welcome", "language:en", "prompt:choose-language", "pressed:0",
                          "language:en", *transfer(call, "", "choose-language", "operator_requested")]
    assert (record.outcome, record.detail) == (Outcome.TRANSFERRED, "asked for an agent at choose-language")
    assert line.kimvoice.calls == [("health_check",)]


async def test_hang_up_while_kimvoice_answers_stops_the_call(line: Line) -> None:
    call = line.make_call("123456#2580# 1 9")
    line.kimvoice.during["get_update_code"] = call.hang_up
    record = await line.run(call)

    assert call.heard == [*SIGN_IN, "prompt:choose-code-type", "pressed:1", "hangup:caller"]
    assert (record.outcome, record.detail) == (Outcome.CALLER_HANGUP, "hung up during get-update-code")
    assert backend(record)[-1] == ("GetUpdateCode", "ChannelHangupError")
    assert call.remaining == "9"


async def test_hang_up_right_after_the_pin_asks_kimvoice_nothing(line: Line) -> None:
    def on_event(event: Event) -> None:
        if event == Event("pressed", "2580#"):
            call.hang_up()

    call = line.make_call("123456#2580# 1 9", on_event=on_event)
    record = await line.run(call)

    assert call.heard == [*SIGN_IN, "hangup:caller"]
    assert line.kimvoice.calls == [("health_check",)]
    assert backend(record) == [("HealthCheck", "ok")]
    assert (record.outcome, record.detail) == (Outcome.CALLER_HANGUP, "hung up during get-key-holders")


async def test_hang_up_while_waiting_for_a_paced_turn_sends_nothing_and_counts_nothing(line: Line) -> None:
    line.settings.update(lockout_global_failures=1, lockout_pace=0.5)
    await line.call("123456#1111#!", caller_id="+15555550601")  # a wrong guess: the line is paced from now
    await line.call("123456#1112#!", caller_id="+15555550602")  # a paced guess: the next turn is a pace away
    assert line.guard is not None and line.guard.paced
    guard, asked, counted = line.guard, len(line.kimvoice.calls), len((await line.store.load_lockouts(0))[0])

    call = line.make_call("123456#2580# 1 9", caller_id="+15555550603")
    running = asyncio.ensure_future(line.run(call))
    while not guard.waiting and not running.done():
        await asyncio.sleep(0)  # until the call waits for its turn
    call.hang_up()
    record = await running

    assert call.heard == [*SIGN_IN, "prompt:please-wait", "hangup:caller"]
    assert line.kimvoice.calls[asked:] == [("health_check",)]
    assert (record.outcome, record.detail) == (Outcome.CALLER_HANGUP, "hung up during get-key-holders")
    assert len((await line.store.load_lockouts(0))[0]) == counted and guard.waiting == 0
    call, record = await line.call("123456#2580# 1 9", caller_id="+15555550604")  # the turn is still there
    assert record.outcome is Outcome.UPDATE_CODE_READ


async def test_operator_from_the_code_type_menu(line: Line) -> None:
    call, record = await line.call("123456#2580# 0")

    assert call.heard == [*SIGN_IN, "prompt:choose-code-type", "pressed:0",
                          *transfer(call, "123456", "choose-code-type", "operator_requested")]
    assert (record.outcome, record.detail) == (Outcome.TRANSFERRED, "asked for an agent at choose-code-type")


# -- the identify route, on the same line ----------------------------------------------------------

IDENTIFIED = ["prompt:identify-result-intro", "tts:Alice Agent", "tts:Downtown office", "digits:15555550142"]


async def test_identify_unknown_key_then_known_then_repeat(line: Line) -> None:
    call, record = await line.call("99999# 123456# 1 9", route="identify")

    assert call.heard == ["answer", "prompt:identify-enter-key-number", "pressed:99999#", "prompt:unknown-key",
                          "prompt:identify-enter-key-number", "pressed:123456#", *IDENTIFIED,
                          "prompt:identify-menu", "pressed:1", *IDENTIFIED, "prompt:identify-menu", "pressed:9",
                          *GOODBYE]
    assert steps(record) == ["identify-enter-key-number", "identify-key-holder", "identify-enter-key-number",
                             "identify-key-holder", "identify-result", "identify-menu", "identify-result",
                             "identify-menu", "goodbye"]
    assert backend(record) == [("IdentifyKeyHolder", "ApiError 1002"), ("IdentifyKeyHolder", "ok")]
    assert (record.outcome, record.key_number, record.route) == (Outcome.IDENTIFIED, 123456, "identify")


async def test_identify_takes_a_key_number_typed_with_leading_zeros_as_its_value(line: Line) -> None:
    call, record = await line.call("00123456# 9", route="identify")

    assert line.kimvoice.calls[-1] == ("identify_key_holder", 123456)
    assert call.heard[:4] == ["answer", "prompt:identify-enter-key-number", "pressed:00123456#", *IDENTIFIED[:1]]
    assert (record.outcome, record.key_number, record.key_entered) == (Outcome.IDENTIFIED, 123456, "****56")
