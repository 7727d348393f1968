"""Kazoo's pivot requests reach `ivr serve`'s own HTTP listener: the same flow, the same record,
refused without the secret."""

from __future__ import annotations

from pathlib import Path

import httpx
from support.line import running_line, today

from ivr.backends.kimvoice.sandbox import update_code_for
from ivr.records import Outcome
from ivr.sim import ScriptedCaller, place_pivot_call

SECRET = "pivot-secret-0123456789"


async def test_an_update_code_call_over_pivot_through_the_service(tmp_path: Path) -> None:
    async with running_line(tmp_path, kazoo_pivot_secret=SECRET) as line:
        call = await place_pivot_call(line.service.http.url, "keybox", caller=ScriptedCaller("123456#2580#19"),
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
