"""`PivotCall` between requests: what each answer holds, the deadline, the caller who never comes back."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from ivr.errors import ChannelHangupError, ChannelProtocolError
from ivr.flow.call import Entry
from ivr.transports.pivot import COLLECTION, INVALID_ENTRY, PivotBusyError, PivotCall
from ivr.tts import TtsCache

BASE = "https://ivr.example.com"
PATIENCE = 3.0  # only a broken test waits this long


def make_call(tmp_path: Path | None = None, **options: Any) -> PivotCall:
    options = {"answer_within": 0.5, "margin": 0.2, "play_allowance": 0.0, **options}
    return PivotCall(
        "call-1", "keybox", caller_id="+15555550100", language="en", variables={"job": "j1"},
        media_base=f"{BASE}/media", voice_url=lambda turn: f"{BASE}/kazoo/pivot/keybox?secret=s&turn={turn}",
        tts=TtsCache(tmp_path / "tts") if tmp_path else None, **options,
    )


def names(modules: list[dict[str, Any]]) -> list[str]:
    return [m["module"] for m in modules]


async def start(flow: Callable[[PivotCall], Awaitable[Any]], call: PivotCall) -> asyncio.Task[Any]:
    task = asyncio.create_task(flow(call))
    await asyncio.sleep(0)
    return task


async def test_a_question_is_the_prompt_collect_dtmf_and_a_pivot_back() -> None:
    call = make_call()

    async def flow(c: PivotCall) -> Entry:
        await c.play("keybox/welcome")
        return await c.read_digits("keybox/enter-key-number", 6000, 10)

    task = await start(flow, call)
    answer = await call.respond({"Call-ID": "call-1"})
    assert names(answer) == ["play", "play", "collect_dtmf", "pivot"]
    assert answer[0]["data"] == {"id": f"{BASE}/media/sounds/en/keybox/welcome.wav", "terminators": []}
    assert answer[1]["data"] == {"id": f"{BASE}/media/sounds/en/keybox/enter-key-number.wav"}
    assert answer[2]["data"] == {"max_digits": 10, "timeout": 6000, "interdigit_timeout": 6000, "terminator": "#",
                                 "collection_name": COLLECTION}
    assert answer[3]["data"] == {"voice_url": f"{BASE}/kazoo/pivot/keybox?secret=s&turn=1", "req_format": "kazoo",
                                 "method": "get"}
    assert not task.done()  # the flow waits for the next request

    async def next_request() -> list[dict[str, Any]]:
        return await call.respond({"Call-ID": "call-1", f"Digits[{COLLECTION}]": "123456"})

    pending = asyncio.create_task(next_request())
    assert await asyncio.wait_for(task, PATIENCE) == Entry("123456", False)
    await call.finish()
    assert names(await asyncio.wait_for(pending, PATIENCE)) == ["play", "hangup"]  # no ending of its own


@pytest.mark.parametrize(("sent", "entry"), [
    ("", Entry("", True)),
    ("12a4", Entry(INVALID_ENTRY, False)),
    ("9" * 10_000, Entry(INVALID_ENTRY, False)),
    ("12345", Entry(INVALID_ENTRY, False)),  # more than the question's 4 keys: no keypad did that
])
async def test_entries_that_are_not_what_a_keypad_sends_are_invalid(sent: str, entry: Entry) -> None:
    call = make_call()
    task = await start(lambda c: c.read_digits("keybox/enter-pin", 6000, 4), call)
    await call.respond({"Call-ID": "call-1"})
    answer = asyncio.create_task(call.respond({"Call-ID": "call-1", f"Digits[{COLLECTION}]": sent}))
    assert await asyncio.wait_for(task, PATIENCE) == entry
    await call.finish()
    await answer


async def test_a_busy_flow_answers_please_wait_and_a_pivot_back_in_time() -> None:
    call = make_call(answer_within=0.1)
    release = asyncio.Event()

    async def flow(c: PivotCall) -> Entry:
        await release.wait()  # a slow backend
        return await c.read_digits("keybox/choose-code-type", 6000, 1)

    task = await start(flow, call)
    answer = await call.respond({"Call-ID": "call-1"})
    assert names(answer) == ["play", "pivot"]
    assert answer[0]["data"]["id"].endswith("/keybox/please-wait.wav")
    release.set()
    answer = await call.respond({"Call-ID": "call-1"})  # the question, when it comes
    assert names(answer) == ["play", "collect_dtmf", "pivot"]
    assert answer[-1]["data"]["voice_url"].endswith("turn=2")
    task.cancel()


async def test_what_was_said_before_the_deadline_goes_out_without_please_wait() -> None:
    call = make_call(answer_within=0.1)
    release = asyncio.Event()

    async def flow(c: PivotCall) -> None:
        await c.play("keybox/your-update-code-is")
        await release.wait()

    task = await start(flow, call)
    assert names(await call.respond({"Call-ID": "call-1"})) == ["play", "pivot"]
    task.cancel()


async def test_no_request_in_time_means_the_caller_hung_up() -> None:
    call = make_call(margin=0.05)
    task = await start(lambda c: c.read_digits("keybox/enter-pin", 100, 4), call)
    await call.respond({"Call-ID": "call-1"})
    with pytest.raises(ChannelHangupError):
        await asyncio.wait_for(task, PATIENCE)
    assert call.hung_up
    with pytest.raises(ChannelHangupError):
        await call.play("keybox/goodbye")


async def test_a_caller_gone_during_a_backend_request_is_noticed() -> None:
    call = make_call(answer_within=0.05, margin=0.05)
    watch = asyncio.create_task(call.wait_hangup())
    task = await start(lambda c: asyncio.sleep(30), call)
    await call.respond({"Call-ID": "call-1"})  # please-wait, then nothing more from Kazoo
    await asyncio.wait_for(watch, PATIENCE)
    task.cancel()


async def test_please_wait_before_a_backend_request_goes_out_at_once() -> None:
    """The flow plays `please-wait` and waits on its backend (`wait_hangup`): the caller hears it
    then, not when the answer's deadline comes; a caller who hangs up during it is noticed."""
    call = make_call(answer_within=PATIENCE, margin=0.05)

    async def flow(c: PivotCall) -> None:
        await c.play("keybox/please-wait")
        await c.wait_hangup()

    answer = asyncio.create_task(call.respond({"Call-ID": "call-1"}))
    await asyncio.sleep(0)
    task = await start(flow, call)
    modules = await asyncio.wait_for(answer, PATIENCE / 2)  # well before `answer_within`
    assert names(modules) == ["play", "pivot"]
    assert modules[0]["data"]["id"].endswith("/keybox/please-wait.wav")
    await asyncio.wait_for(task, PATIENCE)  # no pivot back came: the caller has gone
    assert call.hung_up


async def test_a_second_request_while_one_is_answered_is_refused() -> None:
    call = make_call()
    first = asyncio.create_task(call.respond({"Call-ID": "call-1"}))
    await asyncio.sleep(0)
    with pytest.raises(PivotBusyError):
        await call.respond({"Call-ID": "call-1"})
    await call.finish()
    await first


async def test_digits_are_played_one_by_one_from_tts(tmp_path: Path) -> None:
    call = make_call(tmp_path)
    tts = TtsCache(tmp_path / "tts")
    await call.say_digits("407")
    await call.hangup()
    await call.finish()
    answer = await call.respond({"Call-ID": "call-1"})
    assert names(answer) == ["play", "play", "play", "hangup"]
    renders = [await tts.render(d, "en") for d in "407"]
    assert [m["data"]["id"] for m in answer[:3]] == [f"{BASE}/media/{r}.wav" for r in renders]


async def test_a_transfer_sets_the_variables_then_branches_to_the_callflow() -> None:
    call = make_call(transfer_callflow="agents-callflow-id")
    await call.set_variable("IVR_KEY_NUMBER", "****56")
    await call.set_variable("IVR_LAST_STEP", "enter-pin")
    await call.set_variable("bad name", "x")  # refused, logged
    await call.transfer("Queue(keybox-agents)")
    await call.finish()
    answer = await call.respond({"Call-ID": "call-1"})
    assert names(answer) == ["set_variables", "callflow"]
    assert answer[0]["data"]["custom_application_vars"] == {"IVR_KEY_NUMBER": "****56", "IVR_LAST_STEP": "enter-pin"}
    assert answer[1]["data"] == {"id": "agents-callflow-id"}
    assert call.transferred_to == "agents-callflow-id"


async def test_a_transfer_with_nowhere_to_go_is_a_protocol_error() -> None:
    with pytest.raises(ChannelProtocolError):
        await make_call().transfer("")


async def test_the_language_names_the_sounds() -> None:
    call = make_call()
    await call.set_language("fr")
    await call.set_language("no such language!")  # refused
    await call.play("keybox/goodbye")
    await call.play("beep")  # not one of ours: skipped
    await call.hangup()
    await call.finish()
    answer = await call.respond({"Call-ID": "call-1"})
    assert answer[0]["data"]["id"] == f"{BASE}/media/sounds/fr/keybox/goodbye.wav"
    assert names(answer) == ["play", "hangup"]
    assert call.language == "fr"
    assert call.variables == {"job": "j1"}
