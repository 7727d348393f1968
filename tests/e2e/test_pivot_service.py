"""Kazoo's pivot requests reach `ivr serve`'s own HTTP listener: the same flow, the same record,
and the faults Kazoo (or someone else) may bring, met by the real service.

The branch tests run over Pivot with the others (`support.line`); here are the requests no
well-behaved Kazoo call makes: without the secret, from outside IVR_KAZOO_PIVOT_ALLOW, a reused
Call-ID, Digits no keypad typed, and a restart under calls in progress.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from support.line import PIVOT_SECRET, running_line, today

from ivr.backends.kimvoice.sandbox import update_code_for
from ivr.records import Outcome
from ivr.sim import ScriptedCaller, place_pivot_call
from ivr.store import SqliteStore
from ivr.transports.pivot import COLLECTION

SECRET = "pivot-secret-0123456789"
HAPPY = "123456#2580#19"


def kazoo_params(call_id: str, **digits: str) -> dict[str, str]:
    """What Kazoo sends with each request (`kzt_kazoo:req_params/1`), `Digits` once collected."""
    return {"Call-ID": call_id, "Caller-ID-Number": "+15555550196", "Direction": "inbound",
            **{f"Digits[{COLLECTION}]": value for value in digits.values()}}


async def again(http: httpx.AsyncClient, voice_url: str, params: dict[str, str]) -> dict[str, Any]:
    """A pivot back as Kazoo makes it: its parameters after the voice URL's own query."""
    answer = await http.get(httpx.URL(voice_url).copy_merge_params(params))
    assert answer.status_code == 200, answer.text
    flow: dict[str, Any] = answer.json()
    return flow


def chain(flow: dict[str, Any]) -> list[dict[str, Any]]:
    found, node = [], flow
    while node:
        found.append(node)
        node = node.get("children", {}).get("_")
    return found


def prompts(flow: dict[str, Any]) -> list[str]:
    return [m["data"]["id"].rsplit("/", 1)[-1].removesuffix(".wav") for m in chain(flow)
            if m["module"] == "play" and "/keybox/" in m["data"]["id"]]


async def test_an_update_code_call_over_pivot_through_the_service(tmp_path: Path) -> None:
    async with running_line(tmp_path, kazoo_pivot_secret=SECRET) as line:
        call = await place_pivot_call(line.service.http.url, "keybox", caller=ScriptedCaller(HAPPY),
                                      sounds=line.sounds, secret=SECRET)
        await line.service.pivot.wait_call(call.call_id, timeout=10)
        record = await line.service.services.records.get(call.call_id)
    assert call.failure is None and call.ended_by == "service"
    assert call.transcript.said_digits == [update_code_for(123456, 5001, 5001, 1, today())]
    assert record is not None and record.outcome is Outcome.UPDATE_CODE_READ and record.route == "keybox"


async def test_pivot_is_refused_without_the_secret_and_starts_nothing(tmp_path: Path) -> None:
    async with running_line(tmp_path) as line, httpx.AsyncClient(base_url=line.service.http.url) as http:
        unset = await http.get("/kazoo/pivot/keybox", params={"Call-ID": "c1", "secret": ""})
    async with running_line(tmp_path, kazoo_pivot_secret=SECRET) as line, \
            httpx.AsyncClient(base_url=line.service.http.url) as http:
        wrong = await http.get("/kazoo/pivot/keybox", params={"Call-ID": "c2", "secret": "nope"})
        assert line.service.pivot.active == 0
        assert await line.service.services.records.recent() == []
    assert (unset.status_code, wrong.status_code) == (401, 401)


async def test_a_peer_outside_kazoo_pivot_allow_gets_403_and_no_flow(tmp_path: Path) -> None:
    async with running_line(tmp_path, transport="pivot", kazoo_pivot_allow="192.0.2.0/24") as line, \
            httpx.AsyncClient(base_url=line.service.http.url) as http:
        answer = await http.get("/kazoo/pivot/keybox", params={"secret": PIVOT_SECRET, **kazoo_params("outsider")})
        assert line.service.pivot.active == 0
        assert await line.service.services.records.get("outsider") is None
        assert line.backend_requests() == 0
    assert answer.status_code == 403  # the right secret from the wrong address is not enough


async def test_a_reused_call_id_gets_system_unavailable_and_no_second_flow(tmp_path: Path) -> None:
    async with running_line(tmp_path, transport="pivot") as line:
        first = await line.call(HAPPY)
        asked = line.backend_requests()
        reused = await line.call(HAPPY, call_id=first.record.call_id)
        records = await line.service.services.records.recent()
    assert first.record.outcome is Outcome.UPDATE_CODE_READ
    assert reused.prompts == ["system-unavailable"] and reused.heard.hung_up_by == "service"
    assert line.backend_requests() == asked
    assert [r.call_id for r in records] == [first.record.call_id]  # the first call's record stands alone


async def test_letters_and_ten_thousand_digits_are_invalid_entries(tmp_path: Path) -> None:
    async with running_line(tmp_path, transport="pivot", operator="") as line, \
            httpx.AsyncClient(base_url=line.service.http.url, trust_env=False) as http:
        answer = (await http.get("/kazoo/pivot/keybox", params={"secret": PIVOT_SECRET, **kazoo_params("raw")})).json()
        heard = [prompts(answer)]
        for digits in ("12ab56", "1" * 10_000, "x"):
            answer = await again(http, chain(answer)[-1]["data"]["voice_url"], kazoo_params("raw", d=digits))
            heard.append(prompts(answer))
        await line.service.pivot.wait_call("raw", timeout=10)
        record = await line.service.services.records.get("raw")
    assert heard == [["welcome", "enter-key-number"], *[["invalid-entry", "enter-key-number"]] * 2,
                     ["too-many-attempts", "goodbye"]]
    assert chain(answer)[-1]["module"] == "hangup"
    assert record is not None and record.outcome is Outcome.TOO_MANY_ATTEMPTS
    assert line.requests("GetKeyHolders") == 0


async def test_a_restart_under_calls_in_progress_records_each_and_kazoo_hears_so(tmp_path: Path) -> None:
    call_ids = ("mid-1", "mid-2")
    async with running_line(tmp_path, transport="pivot", drain_seconds=0.2, kazoo_pivot_margin=30) as line, \
            httpx.AsyncClient(base_url=line.service.http.url, trust_env=False) as http:
        voice_urls = {}
        for call_id in call_ids:
            answer = (await http.get("/kazoo/pivot/keybox",
                                     params={"secret": PIVOT_SECRET, **kazoo_params(call_id)})).json()
            voice_urls[call_id] = chain(answer)[-1]["data"]["voice_url"]
        assert line.service.pivot.active == 2
        old_url = line.service.http.url
    store = await SqliteStore.open(tmp_path / "calls.db")
    try:
        records = [await store.get(call_id) for call_id in call_ids]
    finally:
        await store.close()
    assert all(r is not None and (r.outcome, r.detail) == (Outcome.ERROR, "cancelled (service stopping)")
               for r in records)
    async with running_line(tmp_path, transport="pivot") as restarted, httpx.AsyncClient(trust_env=False) as http:
        answers = [await again(http, voice_urls[call_id].replace(old_url, restarted.service.http.url),
                               kazoo_params(call_id, d="123456")) for call_id in call_ids]
        assert restarted.service.pivot.active == 0
        assert restarted.backend_requests() == 0
    for answer in answers:
        assert prompts(answer) == ["system-unavailable"] and chain(answer)[-1]["module"] == "hangup"
