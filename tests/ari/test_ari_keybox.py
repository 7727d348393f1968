"""The keybox route over ARI: the same branches, and the same transcript facts, as over FastAGI."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from support.line import ReactingCaller, today

from ivr.flow.records import Outcome
from ivr.kimvoice import OperationalMode
from ivr.kimvoice.sandbox import Knobs, cbs_code_for, update_code_for

if TYPE_CHECKING:
    from tests.ari.conftest import AriLine, MakeAriLine

pytestmark = pytest.mark.asyncio(loop_scope="module")  # one line for the module (see conftest)

START = ["welcome", "enter-key-number", "enter-pin"]
AGENTS = "Queue(keybox-agents)"
UPDATE_INSTRUCTIONS = "Press the power button, enter the code, then press enter."
CBS_INSTRUCTIONS = "Press the up arrow, enter the code, then press the up arrow again."


# -- codes --------------------------------------------------------------------------------------


async def test_update_code_one_member_one_pod(ari_line: AriLine) -> None:
    call = await ari_line.call("123456#2580#1" "9", caller_id="+15555550100")

    assert call.heard.events[0].kind == "answer"
    assert call.prompts == [*START, "choose-code-type", "your-update-code-is", "after-code-menu", "goodbye"]
    assert call.heard.said_digits == [update_code_for(123456, 5001, 5001, 1, today())]
    assert call.heard.spoken == [UPDATE_INSTRUCTIONS]
    assert call.heard.hung_up_by == "service"
    assert call.result.ended_by == "service"
    assert call.result.requests_after_end == 0
    assert call.record.call_id == call.result.channel_id
    assert call.record.caller_id == "+15555550100"
    assert call.record.outcome is Outcome.UPDATE_CODE_READ
    assert call.record.codes == ["*****" + call.heard.said_digits[0][-2:]]
    assert [b.method for b in call.record.backend] == [
        "HealthCheck", "GetKeyHolders", "ValidateKeyHolder", "GetUpdateCode"]


async def test_update_code_several_members_and_both_pods(ari_line: AriLine) -> None:
    call = await ari_line.call("234567#1357#" "2" "2" "1" "9")

    assert call.prompts[:5] == [*START, "choose-member", "press"]
    assert call.heard.spoken[:3] == [
        "Capital Region Board of Realtors", "Lakeside Association", "Coastal Multiple Listing Service"]
    assert call.heard.said_digits[:3] == ["1", "2", "3"]
    assert "choose-pod" in call.prompts
    assert call.heard.said_digits[-1] == update_code_for(234567, 5001, 7002, 2, today())
    assert call.record.outcome is Outcome.UPDATE_CODE_READ
    assert [s.name for s in call.record.steps][5:7] == ["choose-member", "choose-pod"]


async def test_update_code_for_the_second_of_two_key_records(ari_line: AriLine) -> None:
    call = await ari_line.call("345678#2468#" "2" "1" "9")

    assert call.prompts[3] == "choose-key-holder"
    assert call.heard.spoken[:2] == ["Sam Seller", "Sam Seller, Lakeside office"]
    assert "choose-member" not in call.prompts and "choose-pod" not in call.prompts
    assert call.heard.said_digits[-1] == update_code_for(345678, 7002, 7002, 2, today())


async def test_cbs_code(ari_line: AriLine) -> None:
    call = await ari_line.call("123456#2580#2" "90210#" "4321" "9")

    assert call.prompts == [*START, "choose-code-type", "enter-box-number", "enter-shackle-code",
                            "your-cbs-code-is", "after-code-menu", "goodbye"]
    assert call.heard.said_digits == [cbs_code_for(90210, 123456, 5001, today())]
    assert call.heard.spoken == [CBS_INSTRUCTIONS]
    assert call.record.outcome is Outcome.CBS_CODE_READ


async def test_cbs_wrong_box_then_wrong_shackle(ari_line: AriLine) -> None:
    call = await ari_line.call("123456#2580#2" "90211#" "1111" "90210#" "4321" "9")

    assert call.prompts[4:] == [
        "enter-box-number", "enter-shackle-code", "invalid-box", "enter-box-number",
        "invalid-shackle", "enter-shackle-code", "your-cbs-code-is", "after-code-menu", "goodbye"]
    assert call.heard.said_digits == [cbs_code_for(90210, 123456, 5001, today())]
    assert [b.result for b in call.record.backend if b.method == "GetCbsCode"] == [
        "ApiError 3001", "ApiError 3002", "ok"]


async def test_hear_the_code_again_then_another_code(ari_line: AriLine) -> None:
    call = await ari_line.call("123456#2580#1" "1" "2" "2" "90210#4321" "9")

    update = update_code_for(123456, 5001, 5001, 1, today())
    cbs = cbs_code_for(90210, 123456, 5001, today())
    assert call.heard.said_digits == [update, update, cbs]
    assert call.record.outcome is Outcome.CBS_CODE_READ
    assert len(call.record.codes) == 2


async def test_after_code_menu_unanswered_twice_says_goodbye(ari_line: AriLine) -> None:
    # Over ARI the silence really times out in the service (the entry timeout, 1 s here).
    call = await ari_line.call("123456#2580#1" "_" "_")

    assert call.prompts[-3:] == ["after-code-menu", "after-code-menu", "goodbye"]
    assert [e.kind for e in call.heard.events].count("silence") == 2
    assert call.record.outcome is Outcome.UPDATE_CODE_READ


async def test_star_repeats_the_code_type_menu(ari_line: AriLine) -> None:
    call = await ari_line.call("123456#2580#" "*" "1" "9")

    assert call.prompts[3:5] == ["choose-code-type", "choose-code-type"]
    assert call.record.outcome is Outcome.UPDATE_CODE_READ


# -- entries and attempts ---------------------------------------------------------------------


async def test_invalid_and_empty_entries_then_a_valid_one(ari_line: AriLine) -> None:
    call = await ari_line.call("99#" "_" "123456#2580#19")

    assert call.prompts[:6] == ["welcome", "enter-key-number", "invalid-entry", "enter-key-number",
                                "invalid-entry", "enter-key-number"]
    assert call.record.outcome is Outcome.UPDATE_CODE_READ


async def test_a_partial_entry_times_out_with_what_was_typed(ari_line: AriLine) -> None:
    # "1234" then silence: GET DATA's (timeout) with 4 digits, too short for a key number.
    call = await ari_line.call("1234_" "123456#2580#19")

    assert call.prompts[:4] == ["welcome", "enter-key-number", "invalid-entry", "enter-key-number"]
    assert call.record.outcome is Outcome.UPDATE_CODE_READ


async def test_third_invalid_entry_transfers_to_an_agent(ari_line: AriLine) -> None:
    call = await ari_line.call("99#" "98#" "9999#")

    assert call.prompts[-3:] == ["enter-key-number", "too-many-attempts", "transferring"]
    assert call.heard.transferred_to == AGENTS
    assert call.result.ended_by == "transfer"
    assert call.heard.variables["IVR_OUTCOME"] == "too_many_attempts"
    assert call.heard.variables["IVR_LAST_STEP"] == "enter-key-number"
    assert call.heard.variables["IVR_TRANSFER"] == AGENTS
    assert call.record.outcome is Outcome.TRANSFERRED
    assert "GetKeyHolders" not in [b.method for b in call.record.backend]


async def test_without_an_operator_too_many_attempts_says_goodbye(make_ari_line: MakeAriLine) -> None:
    async with make_ari_line(operator="") as line:
        call = await line.call("123456#" "12#" "1#" "#")
    assert call.prompts[-2:] == ["too-many-attempts", "goodbye"]
    assert call.heard.hung_up_by == "service"
    assert call.record.outcome is Outcome.TOO_MANY_ATTEMPTS


async def test_three_wrong_pins_in_a_call(ari_line: AriLine) -> None:
    call = await ari_line.call("123456#1111#" "123456#2222#" "123456#3333#")

    assert call.prompts.count("invalid-credentials") == 3
    assert call.prompts[-2:] == ["too-many-attempts", "transferring"]
    assert [b.result for b in call.record.backend[1:]] == ["ApiError 1001"] * 3


# -- the operator --------------------------------------------------------------------------------


async def test_zero_in_a_menu_reaches_an_agent_with_the_context(ari_line: AriLine) -> None:
    call = await ari_line.call("123456#2580#0")

    assert call.prompts[-1] == "transferring"
    assert call.heard.transferred_to == AGENTS
    assert call.heard.variables == {
        "IVR_KEY_NUMBER": "123456", "IVR_LAST_STEP": "choose-code-type",
        "IVR_OUTCOME": "operator_requested", "IVR_TRANSFER": AGENTS}
    # IVR_TRANSFER is set last, then the channel continues at keybox-operator,s,1.
    assert [e.value.partition("=")[0] for e in call.heard.events if e.kind == "variable"][-1] == "IVR_TRANSFER"
    assert call.heard.events[-1].kind == "transfer"
    assert call.result.ended_by == "transfer"
    assert call.result.requests_after_end == 0
    assert call.record.outcome is Outcome.TRANSFERRED


async def test_star_zero_in_an_entry_reaches_an_agent(ari_line: AriLine) -> None:
    call = await ari_line.call("123456#*0#")
    assert call.prompts == ["welcome", "enter-key-number", "enter-pin", "transferring"]
    assert call.heard.variables["IVR_LAST_STEP"] == "enter-pin"
    assert [b.method for b in call.record.backend] == ["HealthCheck"]


async def test_not_authorized_caller_presses_zero(ari_line: AriLine) -> None:
    call = await ari_line.call("456789#1470#1" "0")
    assert call.heard.spoken == ["Your account is past due. Please contact your board office."]
    assert call.prompts[-1] == "transferring"
    assert call.heard.variables["IVR_OUTCOME"] == "operator_requested"


# -- KimVoice's state ----------------------------------------------------------------------------


async def test_disaster_recovery_notice_then_the_call_goes_on(make_ari_line: MakeAriLine) -> None:
    knobs = Knobs(operational_mode=OperationalMode.DISASTER_RECOVERY, message="We are on the backup site.")
    async with make_ari_line(knobs) as line:
        call = await line.call("123456#2580#19")
    assert call.prompts[:2] == ["dr-notice", "welcome"]
    assert call.heard.spoken[0] == "We are on the backup site."
    assert call.record.outcome is Outcome.UPDATE_CODE_READ


async def test_health_check_failure_transfers(make_ari_line: MakeAriLine) -> None:
    async with make_ari_line(Knobs(failure_rate=1.0)) as line:
        call = await line.call("123456#2580#19")
    assert call.prompts == ["system-unavailable", "transferring"]
    assert call.heard.variables["IVR_OUTCOME"] == "unavailable"
    assert call.record.outcome is Outcome.TRANSFERRED


async def test_kimvoice_down_mid_call(make_ari_line: MakeAriLine) -> None:
    async with make_ari_line(operator="") as line:
        def down() -> None:
            line.sandbox.knobs.failure_rate = 1.0

        call = await line.call(caller=ReactingCaller("123456#2580#19", "enter-pin", down))
    assert call.prompts[-3:] == ["enter-pin", "system-unavailable", "goodbye"]
    assert call.heard.hung_up_by == "service"
    assert call.record.outcome is Outcome.UNAVAILABLE
    assert call.record.backend[-1].result == "ApiError 9001"


async def test_slow_kimvoice_mid_call_gets_please_wait(make_ari_line: MakeAriLine) -> None:
    async with make_ari_line(please_wait_after=0.05) as line:
        def slow() -> None:
            line.sandbox.knobs.latency = 0.15

        call = await line.call(caller=ReactingCaller("123456#2580#19", "choose-code-type", slow))
    assert "please-wait" in call.prompts[4:]
    assert call.heard.said_digits == [update_code_for(123456, 5001, 5001, 1, today())]
    assert call.record.outcome is Outcome.UPDATE_CODE_READ


# -- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "pin", "spoken"), [
    ("456789", "1470", "Your account is past due. Please contact your board office."),
])
async def test_not_authorized_with_a_message_for_the_caller(ari_line: AriLine, key: str, pin: str, spoken: str) -> None:
    call = await ari_line.call(f"{key}#{pin}#1")
    assert call.heard.spoken == [spoken]
    assert call.prompts[-2:] == ["press-zero-for-operator", "goodbye"]
    assert call.record.outcome is Outcome.NOT_AUTHORIZED
    assert "GetUpdateCode" not in [b.method for b in call.record.backend]
