"""The whole line over Kazoo Pivot: real HTTP on loopback, the real flow and services, the KimVoice
sandbox, and the simulated Kazoo playing the caller's side (`support.pivot_line`)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from support.line import today
from support.pivot_line import SECRET, MakePivotLine, PivotLine

from ivr.backends.kimvoice.sandbox import update_code_for
from ivr.outbound import Outbound
from ivr.records import Outcome
from ivr.sim import Event, ScriptedCaller
from ivr.transports.pivot import COLLECTION

START = ["welcome", "enter-key-number", "enter-pin"]
UPDATE_INSTRUCTIONS = "Press the power button, enter the code, then press enter."


class SlowThenFast(ScriptedCaller):
    """Makes KimVoice take `latency` seconds once the caller hears `on`, and answer at once again
    once they hear `please-wait` (the slow request is under way by then)."""

    def __init__(self, keys: str, line: PivotLine, on: str, latency: float, **kwargs: Any) -> None:
        super().__init__(keys, **kwargs)
        self._line, self._on, self._latency = line, on, latency

    def observe(self, event: Event) -> None:
        if event.kind == "prompt" and event.value == self._on:
            self._line.sandbox.knobs.latency, self._on = self._latency, ""
        elif event.kind == "prompt" and event.value == "please-wait":
            self._line.sandbox.knobs.latency = 0


async def test_update_code_digit_by_digit(pivot_line: PivotLine) -> None:
    call = await pivot_line.call("123456#" "2580#" "1" "9", caller_id="+15555550100")
    record = await pivot_line.record(call.call_id)

    assert call.transcript.events[0].kind == "answer"
    assert call.transcript.prompts == [*START, "choose-code-type", "your-update-code-is", "after-code-menu", "goodbye"]
    assert call.transcript.said_digits == [update_code_for(123456, 5001, 5001, 1, today())]
    assert call.transcript.spoken == [UPDATE_INSTRUCTIONS]
    assert call.transcript.hung_up_by == "service"
    assert call.ended_by == "service" and call.failure is None
    assert call.requests == 5  # the first, then one per answer typed
    assert call.slowest < 3.5
    assert record.call_id == call.call_id
    assert record.caller_id == "+15555550100"
    assert record.outcome is Outcome.UPDATE_CODE_READ
    assert [b.method for b in record.backend] == ["HealthCheck", "GetKeyHolders", "ValidateKeyHolder", "GetUpdateCode"]


async def test_identify(pivot_line: PivotLine) -> None:
    call = await pivot_line.call("123456#" "1" "9", route="identify")
    record = await pivot_line.record(call.call_id)
    assert call.transcript.prompts == ["identify-enter-key-number", "identify-result-intro", "identify-menu",
                                       "identify-result-intro", "identify-menu", "goodbye"]
    assert call.transcript.spoken == ["Jane Agent", "Lakeside Realty"] * 2
    assert call.transcript.said_digits == ["15555550123"] * 2
    assert record.outcome is Outcome.IDENTIFIED


async def test_announce_a_held_job_with_its_code(make_pivot_line: MakePivotLine) -> None:
    async with make_pivot_line(languages=["en", "fr"]) as line:
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        job, _ = await Outbound(line.services.store, line.settings).submit(  # type: ignore[arg-type]
            {"kind": "notice", "to": "5551234", "not_before": tomorrow, "message": "Votre code est",
             "language": "fr", "code": "4719283"})
        call = await line.call("1", route="announce", query={"job": job.id, "attempt": f"{job.id}-1"})
        record = await line.record(call.call_id)
    assert call.transcript.spoken == ["Votre code est"] * 2
    assert call.transcript.said_digits == ["4719283"] * 2
    assert call.transcript.prompts == ["announce-menu", "announce-menu", "goodbye"]
    assert Event("language", "fr") in call.transcript.events  # the sounds came in French
    assert record.outcome is Outcome.ANNOUNCED
    assert record.attempt_id == f"{job.id}-1"
    assert record.codes == ["*****83"]


async def test_a_backend_taking_10_s_gets_please_wait_and_pivots_never_a_late_answer(
        make_pivot_line: MakePivotLine) -> None:
    async with make_pivot_line(kimvoice_timeout=15.0) as line:
        caller = SlowThenFast("123456#2580#19", line, "enter-pin", 10.0)
        call = await line.call(caller=caller)
        record = await line.record(call.call_id)
    assert call.failure is None
    assert call.slowest < 4.0  # Kazoo waits 5 s; the service answers by 3.5 s
    waits = call.transcript.prompts[3:call.transcript.prompts.index("choose-code-type")]
    assert len(waits) >= 2 and set(waits) == {"please-wait"}  # a pivot back each time, never silence
    assert call.transcript.said_digits == [update_code_for(123456, 5001, 5001, 1, today())]
    assert record.outcome is Outcome.UPDATE_CODE_READ
    assert record.backend[1].method == "GetKeyHolders" and record.backend[1].ms >= 10_000


async def test_a_caller_who_never_comes_back_is_a_hang_up(pivot_line: PivotLine) -> None:
    call = await pivot_line.call("123456#!")
    record = await pivot_line.record(call.call_id)
    assert call.ended_by == "caller"
    assert record.outcome is Outcome.CALLER_HANGUP
    assert record.detail == "hung up during enter-pin"
    assert [b.method for b in record.backend] == ["HealthCheck"]
    assert pivot_line.sandbox.requests["GetKeyHolders"] == 0


async def test_a_caller_gone_while_the_backend_thinks_stops_the_flow(make_pivot_line: MakePivotLine) -> None:
    """Kazoo says nothing when a caller hangs up: the next pivot request just never comes. Past
    the idle timeout the backend request is dropped and nothing more is asked of KimVoice."""
    async with make_pivot_line(kimvoice_timeout=15.0) as line:
        class SlowAfterThePin(ScriptedCaller):
            def observe(self, event: Event) -> None:
                if event == Event("prompt", "enter-pin"):
                    line.sandbox.knobs.latency = 10.0

        call = await line.call(caller=SlowAfterThePin("123456#2580#19", hangup_on="please-wait"))
        record = await line.record(call.call_id)
    assert call.ended_by == "caller"
    assert record.outcome is Outcome.CALLER_HANGUP
    last = record.backend[-1]
    assert (last.method, last.result) == ("GetKeyHolders", "ChannelHangupError")
    assert last.ms < 10_000  # dropped once the caller was known gone, not when KimVoice answered
    assert line.sandbox.requests["ValidateKeyHolder"] == 0


async def test_a_request_kazoo_drops_ends_the_call_at_once(make_pivot_line: MakePivotLine) -> None:
    """Kazoo drops a pivot request it waits on only when the call has gone: the backend request
    the flow waits on is dropped then, and nothing more is asked of KimVoice."""
    params = {"Call-ID": "dropped", "Caller-ID-Number": "+15555550195", "Direction": "inbound"}
    async with make_pivot_line(kimvoice_timeout=15.0) as line, httpx.AsyncClient(trust_env=False) as http:
        answer = (await http.get(f"{line.url}/kazoo/pivot/keybox", params={"secret": SECRET, **params})).json()
        answer = (await _again(http, _last(answer)["data"]["voice_url"],
                               {**params, f"Digits[{COLLECTION}]": "123456"})).json()
        line.sandbox.knobs.latency = 10.0
        with contextlib.suppress(TimeoutError):  # the caller hangs up while KimVoice thinks
            async with asyncio.timeout(0.2):
                await _again(http, _last(answer)["data"]["voice_url"], {**params, f"Digits[{COLLECTION}]": "2580"})
        record = await line.record("dropped")
    assert record.outcome is Outcome.CALLER_HANGUP
    last = record.backend[-1]
    assert (last.method, last.result) == ("GetKeyHolders", "ChannelHangupError")
    assert last.ms < 2_000  # at the hang-up: not at the answer's deadline (3.5 s), nor when KimVoice answered
    assert line.sandbox.requests["ValidateKeyHolder"] == 0


async def test_without_the_secret_401_and_no_flow(pivot_line: PivotLine) -> None:
    for secret in (None, "wrong"):
        call = await pivot_line.call("123456#", secret=secret)
        assert call.failure == "HTTP 401"
        assert call.transcript.prompts == []
    assert pivot_line.handled == []
    assert pivot_line.backend_requests() == 0


async def test_a_reused_call_id_is_refused_politely(pivot_line: PivotLine) -> None:
    first = await pivot_line.call("123456#2580#19")
    await pivot_line.record(first.call_id)
    again = await pivot_line.call("123456#2580#19", call_id=first.call_id)
    assert again.transcript.prompts == ["system-unavailable"]
    assert again.transcript.hung_up_by == "service"
    assert pivot_line.handled == [first.call_id]


async def test_letters_and_ten_thousand_digits_are_invalid_entries(pivot_line: PivotLine) -> None:
    url = f"{pivot_line.url}/kazoo/pivot/keybox"
    params = {"Call-ID": "raw-1", "Caller-ID-Number": "+15555550199", "Direction": "inbound"}
    async with httpx.AsyncClient(trust_env=False) as http:
        answer = (await http.get(url, params={"secret": SECRET, **params})).json()
        voice_url = _last(answer)["data"]["voice_url"]
        for digits in ("12ab56", "1" * 10_000):
            answer = (await _again(http, voice_url, {**params, f"Digits[{COLLECTION}]": digits})).json()
            assert _prompts(answer) == ["invalid-entry", "enter-key-number"]
            voice_url = _last(answer)["data"]["voice_url"]
        answer = (await _again(http, voice_url, {**params, f"Digits[{COLLECTION}]": "x"})).json()
    assert _prompts(answer) == ["too-many-attempts", "transferring"]
    assert _last(answer)["module"] == "callflow"
    record = await pivot_line.record("raw-1")
    assert (record.outcome, record.detail) == (Outcome.TRANSFERRED, "at enter-key-number")


async def test_an_operator_transfer_goes_to_the_agents_callflow(make_pivot_line: MakePivotLine) -> None:
    async with make_pivot_line(pivot={"transfer_callflow": "agents-callflow"}) as line:
        call = await line.call("123456#2580#0")
        record = await line.record(call.call_id)
    assert call.ended_by == "transfer" and call.transferred_to == "agents-callflow"
    assert call.transcript.prompts[-1] == "transferring"
    assert call.transcript.variables["IVR_KEY_NUMBER"] == record.key_shown
    assert call.transcript.variables["IVR_LAST_STEP"] == "choose-code-type"
    assert call.transcript.variables["IVR_CALL_ID"] == call.call_id
    assert record.outcome is Outcome.TRANSFERRED


async def test_past_the_cap_a_new_call_hears_system_unavailable(make_pivot_line: MakePivotLine) -> None:
    async with make_pivot_line(operator="", pivot={"max_calls": 1}) as line, \
            httpx.AsyncClient(trust_env=False) as http:
        params = {"Call-ID": "held", "Caller-ID-Number": "+15555550198", "Direction": "inbound"}
        await http.get(f"{line.url}/kazoo/pivot/keybox", params={"secret": SECRET, **params})  # never resumed
        refused = await line.call("123456#2580#19")
        record = await line.record(refused.call_id)
        assert line.pivot.active == 1
        await line.pivot.drain(0.0)  # rather than wait out the held call's ten-digit question
        held = await line.record("held")
    assert refused.transcript.prompts == ["system-unavailable", "goodbye"]
    assert refused.transcript.hung_up_by == "service"
    assert (record.outcome, record.detail, record.backend) == (Outcome.UNAVAILABLE, "over capacity", [])
    assert line.handled == ["held", refused.call_id]
    assert held.outcome is Outcome.ERROR


async def test_a_restart_ends_suspended_calls_recorded_and_kazoo_hears_so(make_pivot_line: MakePivotLine) -> None:
    params = {"Call-ID": "mid-call", "Caller-ID-Number": "+15555550197", "Direction": "inbound"}
    async with make_pivot_line(pivot={"hangup_margin": 30.0}) as line, httpx.AsyncClient(trust_env=False) as http:
        answer = (await http.get(f"{line.url}/kazoo/pivot/keybox", params={"secret": SECRET, **params})).json()
        voice_url = _last(answer)["data"]["voice_url"]
        await line.pivot.drain(0.1)
        record = await line.record("mid-call")
        answer = (await _again(http, voice_url, {**params, f"Digits[{COLLECTION}]": "123456"})).json()
    assert record.outcome is Outcome.ERROR and record.detail == "cancelled (service stopping)"
    assert _prompts(answer) == ["system-unavailable"] and _last(answer)["module"] == "hangup"
    async with make_pivot_line() as restarted, httpx.AsyncClient(trust_env=False) as http:
        resumed = voice_url.replace(line.url, restarted.url)
        answer = (await _again(http, resumed, {**params, f"Digits[{COLLECTION}]": "123456"})).json()
    assert _prompts(answer) == ["system-unavailable"] and _last(answer)["module"] == "hangup"
    assert restarted.handled == []


async def _again(http: httpx.AsyncClient, voice_url: str, params: dict[str, str]) -> httpx.Response:
    """A pivot back as Kazoo makes it: its parameters after the voice URL's own query."""
    return await http.get(httpx.URL(voice_url).copy_merge_params(params))


def _chain(flow: dict[str, Any]) -> list[dict[str, Any]]:
    found, node = [], flow
    while node:
        found.append(node)
        node = node.get("children", {}).get("_")
    return found


def _last(flow: dict[str, Any]) -> dict[str, Any]:
    return _chain(flow)[-1]


def _prompts(flow: dict[str, Any]) -> list[str]:
    return [m["data"]["id"].rsplit("/", 1)[-1].removesuffix(".wav") for m in _chain(flow)
            if m["module"] == "play" and "/keybox/" in m["data"]["id"]]
