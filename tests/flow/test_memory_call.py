"""The in-memory call itself: every member of the `Call` protocol, the script's notation, and
what it tells a test about a flow that breaks the protocol."""

from __future__ import annotations

import asyncio
import inspect

import pytest
from support.memory_call import MemoryCall

from ivr.catalog import PromptCatalog, default_prompts_dir
from ivr.errors import ChannelHangupError
from ivr.flow.call import Call, Entry
from ivr.sim import Event

CATALOG = PromptCatalog.load(default_prompts_dir())


def _members(cls: type) -> dict[str, object]:
    return {name: value for name, value in vars(cls).items() if not name.startswith("_")}


def test_memory_call_has_every_member_of_the_protocol_with_its_signature() -> None:
    protocol = _members(Call)
    assert protocol, "the Call protocol has no members?"
    for name, member in protocol.items():
        mine = getattr(MemoryCall, name, None)
        assert mine is not None, f"MemoryCall lacks {name}"
        if isinstance(member, property):
            assert isinstance(mine, property), name
        else:
            assert callable(mine) and callable(member), name
            assert inspect.iscoroutinefunction(mine) == inspect.iscoroutinefunction(member), name
            assert inspect.signature(mine) == inspect.signature(member), name


def test_the_call_facts() -> None:
    call = MemoryCall(route="identify", caller_id="anonymous", language="fr", variables={"job": "7"}, call_id="c-1")
    assert (call.call_id, call.route, call.caller_id, call.language, call.variables) == (
        "c-1", "identify", "anonymous", "fr", {"job": "7"})
    assert MemoryCall().call_id != MemoryCall().call_id


async def test_entries_follow_asterisk_rules() -> None:
    call = MemoryCall("123456# 2580 # 12_ _ *0# 7")
    assert await call.read_digits("keybox/enter-key-number", 6000, 10) == Entry("123456", False)
    assert await call.read_digits("keybox/enter-pin", 6000, 4) == Entry("2580", False)  # full; its `#` typed too
    assert await call.read_digits("keybox/enter-box-number", 6000, 10) == Entry("12", True)  # timed out
    assert await call.read_digits("keybox/enter-box-number", 6000, 10) == Entry("", True)  # silence
    assert await call.read_digits("keybox/enter-box-number", 6000, 10) == Entry("*0", False)
    assert await call.wait_for_digit(6000) == "7"
    assert await call.wait_for_digit(6000) == ""  # the script is over: silence
    assert call.heard == ["prompt:enter-key-number", "pressed:123456#", "prompt:enter-pin", "pressed:2580#",
                          "prompt:enter-box-number", "pressed:12", "prompt:enter-box-number", "silence",
                          "prompt:enter-box-number", "pressed:*0#", "pressed:7", "silence"]


async def test_the_caller_hangs_up_at_bang_and_the_channel_stays_gone() -> None:
    call = MemoryCall("1!")
    assert await call.wait_for_digit(1000) == "1"
    with pytest.raises(ChannelHangupError):
        await call.wait_for_digit(1000)
    await asyncio.wait_for(call.wait_hangup(), 1)  # at once
    for operation in (call.answer(), call.play("keybox/goodbye"), call.set_variable("A", "b"), call.hangup()):
        with pytest.raises(ChannelHangupError):
            await operation
    assert call.heard == ["pressed:1", "hangup:caller"]
    assert call.ended_by == "caller" and call.transcript.hung_up_by == "caller"
    assert call.transcript.notes == []  # a flow finding the caller gone did nothing wrong


async def test_hangup_on_a_sound() -> None:
    call = MemoryCall(hangup_on="digits")
    await call.play("keybox/your-update-code-is")
    with pytest.raises(ChannelHangupError):
        await call.say_digits("1234")
    assert call.heard == ["prompt:your-update-code-is", "digits:1234", "hangup:caller"]


async def test_escape_digits_and_barge_in() -> None:
    call = MemoryCall(barge_in=[(Event("prompt", "welcome"), "5"), (Event("digits", "12"), "1")])
    assert await call.play("keybox/welcome", "12") == ""  # 5 is no escape digit: lost
    assert await call.play("keybox/welcome", "12") == ""  # each press is used once
    assert await call.say_digits("12", "12") == "1"
    assert call.heard == ["prompt:welcome", "pressed:5", "prompt:welcome", "digits:12", "pressed:1"]
    assert len(call.transcript.notes) == 1


async def test_the_service_side() -> None:
    call = MemoryCall(language="en", catalog=CATALOG)
    await call.answer()
    await call.answer()  # once
    await call.set_language("fr")
    await call.play("keybox/welcome")
    await call.play("keybox/no-such-prompt")
    await call.play("beep")
    await call.set_variable("IVR_OUTCOME", "error")
    await call.transfer("Queue(keybox-agents)")
    assert call.heard == ["answer", "language:fr", "prompt:welcome", "missing:keybox/no-such-prompt",
                          "sound:beep", "variable:IVR_OUTCOME=error", "transfer:Queue(keybox-agents)"]
    assert call.language == "fr" and call.channel_variables == {"IVR_OUTCOME": "error"}
    await asyncio.wait_for(call.wait_hangup(), 1)  # the channel is no longer the flow's
    with pytest.raises(ChannelHangupError):
        await call.hangup()
    assert call.transcript.notes == ["hangup after the flow's own transfer"]


async def test_an_operation_while_wait_hangup_runs_is_a_protocol_break() -> None:
    call = MemoryCall()
    watch = asyncio.ensure_future(call.wait_hangup())
    await asyncio.sleep(0)
    with pytest.raises(AssertionError):
        await call.play("keybox/welcome")
    watch.cancel()
    await asyncio.wait({watch})
    await call.play("keybox/welcome")  # once the watch is cancelled, the channel is free again
    assert call.transcript.notes == ["protocol broken: play while wait_hangup runs"]
