"""The keybox route's happy paths, heard through the simulated Asterisk (over FastAGI and ARI)."""

from __future__ import annotations

from support.line import Line, today

from ivr.backends.kimvoice.sandbox import cbs_code_for, update_code_for
from ivr.records import Outcome

START = ["welcome", "enter-key-number", "enter-pin"]
UPDATE_INSTRUCTIONS = "Press the power button, enter the code, then press enter."
CBS_INSTRUCTIONS = "Press the up arrow, enter the code, then press the up arrow again."


async def test_update_code_one_member_one_pod(line: Line) -> None:
    call = await line.call("123456#2580#1" "9", caller_id="+15555550100")

    assert call.heard.events[0].kind == "answer"
    assert call.prompts == [*START, "choose-code-type", "your-update-code-is", "after-code-menu", "goodbye"]
    assert call.heard.said_digits == [update_code_for(123456, 5001, 5001, 1, today())]
    assert call.heard.spoken == [UPDATE_INSTRUCTIONS]
    assert call.heard.hung_up_by == "service"
    assert call.record.call_id == call.result.unique_id
    assert call.record.caller_id == "+15555550100"
    assert call.record.outcome is Outcome.UPDATE_CODE_READ
    assert call.record.key_number == 123456
    assert call.record.codes == ["*****" + call.heard.said_digits[0][-2:]]
    assert [b.method for b in call.record.backend] == [
        "HealthCheck", "GetKeyHolders", "ValidateKeyHolder", "GetUpdateCode"]
    assert all(b.result == "ok" for b in call.record.backend)
    if (ari := call.ari_result) is not None:
        assert ari.ended_by == "service"
        assert ari.requests_after_end == 0


async def test_update_code_several_members_and_both_pods(line: Line) -> None:
    # Lakeside Association is the second member; pod 2.
    call = await line.call("234567#1357#" "2" "2" "1" "9")

    assert call.prompts[:5] == [*START, "choose-member", "press"]
    assert call.heard.spoken[:3] == [
        "Capital Region Board of Realtors", "Lakeside Association", "Coastal Multiple Listing Service"]
    assert call.heard.said_digits[:3] == ["1", "2", "3"]
    assert "choose-pod" in call.prompts
    assert call.heard.said_digits[-1] == update_code_for(234567, 5001, 7002, 2, today())
    assert call.record.outcome is Outcome.UPDATE_CODE_READ
    assert [s.name for s in call.record.steps][5:7] == ["choose-member", "choose-pod"]


async def test_update_code_for_the_second_of_two_key_records(line: Line) -> None:
    call = await line.call("345678#2468#" "2" "1" "9")

    assert call.prompts[3] == "choose-key-holder"
    assert call.heard.spoken[:2] == ["Sam Seller", "Sam Seller, Lakeside office"]
    assert "choose-member" not in call.prompts and "choose-pod" not in call.prompts
    assert call.heard.said_digits[-1] == update_code_for(345678, 7002, 7002, 2, today())


async def test_cbs_code(line: Line) -> None:
    call = await line.call("123456#2580#2" "90210#" "4321" "9")

    assert call.prompts == [*START, "choose-code-type", "enter-box-number", "enter-shackle-code",
                            "your-cbs-code-is", "after-code-menu", "goodbye"]
    assert call.heard.said_digits == [cbs_code_for(90210, 123456, 5001, today())]
    assert call.heard.spoken == [CBS_INSTRUCTIONS]
    assert call.record.outcome is Outcome.CBS_CODE_READ
    validation = [b for b in call.record.backend if b.method == "ValidateKeyHolder"]
    assert len(validation) == 1


async def test_cbs_wrong_box_then_wrong_shackle(line: Line) -> None:
    # KimVoice checks the box before the shackle code; only the wrong one is asked again.
    call = await line.call("123456#2580#2" "90211#" "1111" "90210#" "4321" "9")

    assert call.prompts[4:] == [
        "enter-box-number", "enter-shackle-code", "invalid-box", "enter-box-number",
        "invalid-shackle", "enter-shackle-code", "your-cbs-code-is", "after-code-menu", "goodbye"]
    assert call.heard.said_digits == [cbs_code_for(90210, 123456, 5001, today())]
    assert [b.result for b in call.record.backend if b.method == "GetCbsCode"] == [
        "ApiError 3001", "ApiError 3002", "ok"]


async def test_hear_the_code_again_then_another_code(line: Line) -> None:
    call = await line.call("123456#2580#1" "1" "2" "2" "90210#4321" "9")

    update = update_code_for(123456, 5001, 5001, 1, today())
    cbs = cbs_code_for(90210, 123456, 5001, today())
    assert call.heard.said_digits == [update, update, cbs]
    assert call.prompts.count("after-code-menu") == 3
    assert call.record.outcome is Outcome.CBS_CODE_READ
    assert len(call.record.codes) == 2


async def test_after_code_menu_unanswered_twice_says_goodbye(line: Line) -> None:
    # Over ARI the silence really times out in the service (the entry timeout, 1 s here).
    call = await line.call("123456#2580#1" "_" "_")

    assert call.prompts[-3:] == ["after-code-menu", "after-code-menu", "goodbye"]
    assert [e.kind for e in call.heard.events].count("silence") == 2
    assert call.record.outcome is Outcome.UPDATE_CODE_READ


async def test_star_repeats_the_code_type_menu(line: Line) -> None:
    call = await line.call("123456#2580#" "*" "1" "9")

    assert call.prompts[3:5] == ["choose-code-type", "choose-code-type"]
    assert "invalid-entry" not in call.prompts
    assert call.record.outcome is Outcome.UPDATE_CODE_READ


async def test_a_pin_with_a_leading_zero_reaches_kimvoice_intact(line: Line) -> None:
    call = await line.call("123456#0258#!")  # not the PIN; what matters is what KimVoice was asked

    assert call.prompts[3] == "invalid-credentials"
    assert call.record.backend[1].result == "ApiError 1001"
