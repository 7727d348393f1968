"""`Dialog`, the caller primitives, over an in-memory call: what the caller hears, exactly."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from support.memory_call import MemoryCall

from ivr.catalog import PromptCatalog, default_prompts_dir
from ivr.errors import ApiError, ChannelHangupError, ErrorCode, UnavailableError
from ivr.flow.dialog import (
    MAX_REPEATS,
    Dialog,
    DialogConfig,
    OperatorRequested,
    TooManyAttempts,
)
from ivr.flow.validators import is_four_digits, is_key_number
from ivr.records import CallRecord
from ivr.sim import Event, InputRequest
from ivr.tts import TtsCache

CATALOG = PromptCatalog.load(default_prompts_dir())
OPERATOR = "Queue(keybox-agents)"
TIMEOUT = 6000


@pytest.fixture
def tts(tmp_path: Path) -> TtsCache:
    return TtsCache(tmp_path / "tts", None, key=b"memory-call-tests")


def make_call(tts: TtsCache, keys: str = "", **options: object) -> MemoryCall:
    return MemoryCall(keys, tts_text=tts.text_of, catalog=CATALOG, **options)  # type: ignore[arg-type]


def dialog(call: MemoryCall, tts: TtsCache, *, operator: str = "", please_wait_after: float = 3600) -> Dialog:
    """A dialog over `call`; `please-wait` never plays unless a test shortens `please_wait_after`."""
    record = CallRecord(call_id=call.call_id, route=call.route, caller_id=call.caller_id, language=call.language)
    config = DialogConfig(entry_timeout_ms=TIMEOUT, please_wait_after=please_wait_after, operator=operator)
    return Dialog(call, record, tts, config)


async def ask_key(d: Dialog) -> str:
    return await d.ask("enter-key-number", max_digits=10, valid=is_key_number)


# -- ask ------------------------------------------------------------------------------------


async def test_ask_valid_the_first_time(tts: TtsCache) -> None:
    call = make_call(tts, "123456#")
    assert await ask_key(dialog(call, tts)) == "123456"
    assert call.heard == ["prompt:enter-key-number", "pressed:123456#"]
    assert call.requests == [InputRequest("get_data", "keybox/enter-key-number", 10, TIMEOUT)]
    assert call.remaining == "" and call.transcript.notes == []


async def test_ask_invalid_then_valid_hears_invalid_entry_between(tts: TtsCache) -> None:
    call = make_call(tts, "12# 123456#")
    assert await ask_key(dialog(call, tts)) == "123456"
    assert call.heard == ["prompt:enter-key-number", "pressed:12#", "prompt:invalid-entry",
                          "prompt:enter-key-number", "pressed:123456#"]


async def test_ask_takes_an_entry_that_timed_out_when_it_is_valid(tts: TtsCache) -> None:
    call = make_call(tts, "2580_")  # no `#`: the entry times out with its four digits
    assert await dialog(call, tts).ask("enter-pin", max_digits=4, valid=is_four_digits) == "2580"
    call = make_call(tts, "258_")
    with pytest.raises(TooManyAttempts):
        await dialog(call, tts).ask("enter-pin", max_digits=4, valid=is_four_digits)
    assert call.heard[:3] == ["prompt:enter-pin", "pressed:258", "prompt:invalid-entry"]


async def test_ask_three_invalid_entries_are_too_many(tts: TtsCache) -> None:
    call = make_call(tts, "1# 22# 333# 123456#")
    with pytest.raises(TooManyAttempts) as too_many:
        await ask_key(dialog(call, tts))
    assert (too_many.value.question, too_many.value.silent) == ("enter-key-number", False)
    assert call.heard == ["prompt:enter-key-number", "pressed:1#", "prompt:invalid-entry",
                          "prompt:enter-key-number", "pressed:22#", "prompt:invalid-entry",
                          "prompt:enter-key-number", "pressed:333#"]  # no invalid-entry after the third
    assert call.remaining == "123456#"


async def test_ask_three_silences_are_too_many_and_silent(tts: TtsCache) -> None:
    call = make_call(tts, "")
    with pytest.raises(TooManyAttempts) as too_many:
        await ask_key(dialog(call, tts))
    assert too_many.value.silent is True
    assert call.heard == ["prompt:enter-key-number", "silence", "prompt:invalid-entry",
                          "prompt:enter-key-number", "silence", "prompt:invalid-entry",
                          "prompt:enter-key-number", "silence"]


async def test_ask_one_key_among_silences_is_not_silent(tts: TtsCache) -> None:
    call = make_call(tts, "_ 7# _")
    with pytest.raises(TooManyAttempts) as too_many:
        await ask_key(dialog(call, tts))
    assert too_many.value.silent is False


async def test_ask_a_lone_pound_counts_as_silence(tts: TtsCache) -> None:
    """`#` alone gives an empty entry: as far as `silent` goes, the caller pressed nothing."""
    call = make_call(tts, "# # #")
    with pytest.raises(TooManyAttempts) as too_many:
        await ask_key(dialog(call, tts))
    assert too_many.value.silent is True
    assert call.heard.count("pressed:#") == 3


async def test_ask_star_zero_asks_for_the_operator_when_there_is_one(tts: TtsCache) -> None:
    call = make_call(tts, "*0# 123456#")
    with pytest.raises(OperatorRequested) as wish:
        await ask_key(dialog(call, tts, operator=OPERATOR))
    assert str(wish.value) == "enter-key-number"
    assert call.heard == ["prompt:enter-key-number", "pressed:*0#"]
    assert call.remaining == "123456#"


async def test_ask_star_zero_is_an_ordinary_invalid_entry_without_an_operator(tts: TtsCache) -> None:
    call = make_call(tts, "*0# 123456#")
    assert await ask_key(dialog(call, tts)) == "123456"
    assert call.heard == ["prompt:enter-key-number", "pressed:*0#", "prompt:invalid-entry",
                          "prompt:enter-key-number", "pressed:123456#"]


async def test_ask_a_hang_up_raises_channel_hangup(tts: TtsCache) -> None:
    call = make_call(tts, "12#!")
    with pytest.raises(ChannelHangupError):
        await ask_key(dialog(call, tts))
    assert call.heard == ["prompt:enter-key-number", "pressed:12#", "prompt:invalid-entry",
                          "prompt:enter-key-number", "hangup:caller"]
    with pytest.raises(ChannelHangupError):
        await call.play("keybox/goodbye")  # the channel is gone
    assert call.transcript.notes == []


# -- menu / choice ----------------------------------------------------------------------------


async def test_menu_returns_a_key_among_the_options(tts: TtsCache) -> None:
    call = make_call(tts, "2")
    assert await dialog(call, tts).menu("choose-code-type", "12", repeat=True) == "2"
    assert call.heard == ["prompt:choose-code-type", "pressed:2"]
    assert call.requests == [InputRequest("get_data", "keybox/choose-code-type", 1, TIMEOUT)]


async def test_menu_zero_is_the_operator_when_there_is_one(tts: TtsCache) -> None:
    call = make_call(tts, "0")
    with pytest.raises(OperatorRequested) as wish:
        await dialog(call, tts, operator=OPERATOR).menu("choose-code-type", "12")
    assert str(wish.value) == "choose-code-type"
    assert call.heard == ["prompt:choose-code-type", "pressed:0"]


async def test_menu_zero_is_a_wrong_key_without_an_operator(tts: TtsCache) -> None:
    call = make_call(tts, "0 1")
    assert await dialog(call, tts).menu("choose-code-type", "12") == "1"
    assert call.heard == ["prompt:choose-code-type", "pressed:0", "prompt:invalid-entry",
                          "prompt:choose-code-type", "pressed:1"]


async def test_menu_star_repeats_without_counting_a_failure(tts: TtsCache) -> None:
    call = make_call(tts, "** 9 9 1")
    assert await dialog(call, tts).menu("choose-code-type", "12", repeat=True) == "1"
    assert call.heard == ["prompt:choose-code-type", "pressed:*"] * 2 + [
        "prompt:choose-code-type", "pressed:9", "prompt:invalid-entry",
        "prompt:choose-code-type", "pressed:9", "prompt:invalid-entry",
        "prompt:choose-code-type", "pressed:1"]  # two stars and two failures: the third try still counts


async def test_menu_star_repeats_at_most_max_repeats_times(tts: TtsCache) -> None:
    call = make_call(tts, "*" * (MAX_REPEATS + 1) + "1")
    assert await dialog(call, tts).menu("choose-code-type", "12", repeat=True) == "1"
    assert call.heard == ["prompt:choose-code-type", "pressed:*"] * (MAX_REPEATS + 1) + [
        "prompt:invalid-entry", "prompt:choose-code-type", "pressed:1"]


async def test_menu_star_is_a_wrong_key_where_the_menu_does_not_repeat(tts: TtsCache) -> None:
    call = make_call(tts, "* 1")
    assert await dialog(call, tts).menu("choose-pod", "12") == "1"
    assert call.heard == ["prompt:choose-pod", "pressed:*", "prompt:invalid-entry", "prompt:choose-pod", "pressed:1"]


async def test_menu_silence_replays_without_invalid_entry(tts: TtsCache) -> None:
    call = make_call(tts, "_ 1")
    assert await dialog(call, tts).menu("choose-code-type", "12") == "1"
    assert call.heard == ["prompt:choose-code-type", "silence", "prompt:choose-code-type", "pressed:1"]


async def test_menu_wrong_key_hears_invalid_entry(tts: TtsCache) -> None:
    call = make_call(tts, "5 2")
    assert await dialog(call, tts).menu("choose-code-type", "12") == "2"
    assert call.heard == ["prompt:choose-code-type", "pressed:5", "prompt:invalid-entry",
                          "prompt:choose-code-type", "pressed:2"]


async def test_menu_three_failures_are_too_many(tts: TtsCache) -> None:
    call = make_call(tts, "5 _ 7 1")
    with pytest.raises(TooManyAttempts) as too_many:
        await dialog(call, tts).menu("choose-code-type", "12")
    assert (too_many.value.question, too_many.value.silent) == ("choose-code-type", False)
    assert call.heard == ["prompt:choose-code-type", "pressed:5", "prompt:invalid-entry",
                          "prompt:choose-code-type", "silence",
                          "prompt:choose-code-type", "pressed:7"]
    assert call.remaining == "1"


async def test_menu_silence_throughout_is_too_many_and_silent(tts: TtsCache) -> None:
    call = make_call(tts, "")
    with pytest.raises(TooManyAttempts) as too_many:
        await dialog(call, tts).menu("after-code-menu", "129", attempts=2)
    assert too_many.value.silent is True
    assert call.heard == ["prompt:after-code-menu", "silence"] * 2


async def test_choice_runs_any_offer_until_a_key_among_the_options(tts: TtsCache) -> None:
    keys = iter(["", "x", "b"])
    offers = 0

    async def offer() -> str:
        nonlocal offers
        offers += 1
        return next(keys)

    d = dialog(make_call(tts), tts)
    assert await d.choice("question", "ab", offer) == "b"
    assert offers == 3
    assert d.call.heard == ["prompt:invalid-entry"]  # type: ignore[attr-defined]  # after "x" only


# -- choose -------------------------------------------------------------------------------------


async def test_choose_speaks_each_name_with_press_and_its_digit(tts: TtsCache) -> None:
    call = make_call(tts, "2")
    assert await dialog(call, tts).choose("choose-member", ["Alice Agent", "Bob Broker"]) == 1
    assert call.heard == ["prompt:choose-member",
                          "tts:Alice Agent", "prompt:press", "digits:1",
                          "tts:Bob Broker", "prompt:press", "digits:2",
                          "pressed:2"]
    assert call.requests == [InputRequest("wait_for_digit", None, 1, TIMEOUT)]


async def test_choose_a_key_during_a_name_cuts_the_offer_short(tts: TtsCache) -> None:
    call = make_call(tts, barge_in=[(Event("tts", "Bob Broker"), "1")])
    names = ["Alice Agent", "Bob Broker", "Carol Closer"]
    assert await dialog(call, tts).choose("choose-member", names) == 0
    assert call.heard == ["prompt:choose-member", "tts:Alice Agent", "prompt:press", "digits:1",
                          "tts:Bob Broker", "pressed:1"]
    assert call.requests == []


async def test_choose_a_key_during_the_intro_or_a_digit(tts: TtsCache) -> None:
    call = make_call(tts, barge_in=[(Event("prompt", "choose-key-holder"), "2")])
    assert await dialog(call, tts).choose("choose-key-holder", ["Sam", "Sam, Lakeside"]) == 1
    assert call.heard == ["prompt:choose-key-holder", "pressed:2"]

    call = make_call(tts, barge_in=[(Event("digits", "1"), "1")])
    assert await dialog(call, tts).choose("choose-key-holder", ["Sam", "Sam, Lakeside"]) == 0
    assert call.heard == ["prompt:choose-key-holder", "tts:Sam", "prompt:press", "digits:1", "pressed:1"]


async def test_choose_a_key_that_is_no_escape_is_lost(tts: TtsCache) -> None:
    call = make_call(tts, "1", barge_in=[(Event("tts", "Alice Agent"), "7")])
    assert await dialog(call, tts).choose("choose-member", ["Alice Agent", "Bob Broker"]) == 0
    assert call.heard == ["prompt:choose-member", "tts:Alice Agent", "pressed:7", "prompt:press", "digits:1",
                          "tts:Bob Broker", "prompt:press", "digits:2", "pressed:1"]
    assert len(call.transcript.notes) == 1


async def test_choose_zero_during_the_offer_asks_for_the_operator(tts: TtsCache) -> None:
    call = make_call(tts, barge_in=[(Event("tts", "Alice Agent"), "0")])
    with pytest.raises(OperatorRequested):
        await dialog(call, tts, operator=OPERATOR).choose("choose-member", ["Alice Agent", "Bob Broker"])
    assert call.heard == ["prompt:choose-member", "tts:Alice Agent", "pressed:0"]


async def test_choose_wrong_key_then_the_whole_offer_again(tts: TtsCache) -> None:
    call = make_call(tts, "3 1")
    assert await dialog(call, tts).choose("choose-member", ["Alice Agent", "Bob Broker"]) == 0
    offer = ["prompt:choose-member", "tts:Alice Agent", "prompt:press", "digits:1",
             "tts:Bob Broker", "prompt:press", "digits:2"]
    assert call.heard == [*offer, "pressed:3", "prompt:invalid-entry", *offer, "pressed:1"]


async def test_choose_offers_nine_names_at_most(tts: TtsCache) -> None:
    names = [f"Member {n}" for n in range(1, 12)]
    call = make_call(tts, "9")
    assert await dialog(call, tts).choose("choose-member", names) == 8
    assert call.transcript.spoken == names[:9]
    assert call.transcript.said_digits == [str(n) for n in range(1, 10)]


# -- what the caller hears --------------------------------------------------------------------


async def test_read_code_says_the_digits_and_keeps_the_code_masked(tts: TtsCache) -> None:
    call = make_call(tts)
    d = dialog(call, tts)
    await d.read_code("your-update-code-is", "73158246")
    await d.read_code("your-update-code-is", "73158246")
    assert call.heard == ["prompt:your-update-code-is", "digits:73158246"] * 2
    assert d.record.codes == ["******46"]


async def test_speak_says_nothing_for_empty_text(tts: TtsCache) -> None:
    call = make_call(tts)
    d = dialog(call, tts)
    assert await d.speak("  ") == ""
    assert await d.speak("Press the power button.") == ""
    assert call.heard == ["tts:Press the power button."]


async def test_offer_operator(tts: TtsCache) -> None:
    call = make_call(tts, "0")
    await dialog(call, tts).offer_operator()  # no operator: nothing heard, nothing asked
    assert call.heard == [] and call.remaining == "0"

    with pytest.raises(OperatorRequested):
        await dialog(call, tts, operator=OPERATOR).offer_operator()
    assert call.heard == ["prompt:press-zero-for-operator", "pressed:0"]
    assert call.requests == [InputRequest("get_data", "keybox/press-zero-for-operator", 1, TIMEOUT // 2)]

    call = make_call(tts, "")
    await dialog(call, tts, operator=OPERATOR).offer_operator()
    assert call.heard == ["prompt:press-zero-for-operator", "silence"]


# -- backend ------------------------------------------------------------------------------------


async def test_backend_answer_in_time_no_please_wait(tts: TtsCache) -> None:
    async def request() -> str:
        return "answer"

    call = make_call(tts)
    d = dialog(call, tts, please_wait_after=0.01)
    assert await d.backend("HealthCheck", request()) == "answer"
    assert call.heard == []
    assert [(b.method, b.result) for b in d.record.backend] == [("HealthCheck", "ok")]
    assert d.record.backend[0].ms >= 0


async def test_backend_slow_request_hears_please_wait(tts: TtsCache) -> None:
    heard_please_wait = asyncio.Event()

    def on_event(event: Event) -> None:
        if event == Event("prompt", "please-wait"):
            heard_please_wait.set()

    async def request() -> str:
        await heard_please_wait.wait()  # answers only once the caller has heard please-wait
        return "answer"

    call = make_call(tts, on_event=on_event)
    d = dialog(call, tts, please_wait_after=0.01)
    assert await d.backend("GetKeyHolders", request()) == "answer"
    assert call.heard == ["prompt:please-wait"]
    assert [(b.method, b.result) for b in d.record.backend] == [("GetKeyHolders", "ok")]
    assert call.transcript.notes == []


async def test_backend_hang_up_during_the_request_cancels_it(tts: TtsCache) -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def request() -> str:
        started.set()
        try:
            await asyncio.Event().wait()  # never answers
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    call = make_call(tts)
    d = dialog(call, tts)  # no please-wait: only the hang-up can end the wait
    backend = asyncio.ensure_future(d.backend("GetUpdateCode", request()))
    await started.wait()
    call.hang_up()
    with pytest.raises(ChannelHangupError):
        await backend
    await asyncio.wait_for(cancelled.wait(), 1)
    assert call.heard == ["hangup:caller"]
    assert [(b.method, b.result) for b in d.record.backend] == [("GetUpdateCode", "ChannelHangupError")]
    assert call.transcript.notes == []


async def test_backend_hang_up_during_please_wait_cancels_the_request(tts: TtsCache) -> None:
    cancelled = asyncio.Event()

    async def request() -> str:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    call = make_call(tts, hangup_on="please-wait")
    d = dialog(call, tts, please_wait_after=0.01)
    with pytest.raises(ChannelHangupError):
        await d.backend("GetCbsCode", request())
    await asyncio.wait_for(cancelled.wait(), 1)
    assert call.heard == ["prompt:please-wait", "hangup:caller"]
    assert [(b.method, b.result) for b in d.record.backend] == [("GetCbsCode", "ChannelHangupError")]


async def test_backend_after_the_caller_has_gone_starts_no_request(tts: TtsCache) -> None:
    """The caller has hung up already: the request is never started, nor recorded."""
    ran = False

    async def request() -> str:
        nonlocal ran
        ran = True
        return "answer"

    call = make_call(tts)
    call.hang_up()
    d = dialog(call, tts)
    with pytest.raises(ChannelHangupError):
        await d.backend("HealthCheck", request())
    await asyncio.sleep(0)
    assert d.record.backend == []
    assert ran is False and call.transcript.notes == []


async def test_backend_errors_are_recorded_and_raised(tts: TtsCache) -> None:
    async def refused() -> str:
        raise ApiError("GetKeyHolders", 400, ErrorCode.PIN_MISMATCH, "PIN mismatch")

    async def down() -> str:
        raise UnavailableError("KimVoice answered 503")

    d = dialog(make_call(tts), tts, please_wait_after=0.01)
    with pytest.raises(ApiError):
        await d.backend("GetKeyHolders", refused())
    with pytest.raises(UnavailableError):
        await d.backend("HealthCheck", down())
    assert [(b.method, b.result) for b in d.record.backend] == [
        ("GetKeyHolders", "ApiError 1001"), ("HealthCheck", "UnavailableError")]


# -- steps ------------------------------------------------------------------------------------


async def test_steps_are_timed_in_order(tts: TtsCache) -> None:
    d = dialog(make_call(tts), tts)
    d.step("welcome")
    d.step("enter-key-number")
    assert d.record.last_step == "enter-key-number"
    assert d.record.steps[0].ms is not None and d.record.steps[1].ms is None
    d.close_steps()
    assert [s.name for s in d.record.steps] == ["welcome", "enter-key-number"]
    assert all(s.ms is not None and s.ms >= 0 for s in d.record.steps)
