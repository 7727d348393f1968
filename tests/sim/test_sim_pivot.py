"""The simulated Kazoo against a scripted pivot server on loopback: what it sends, how it runs the
callflow it gets, and the failures Kazoo ends a call on."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ivr.embedded_http import EmbeddedHttpServer
from ivr.sim import ScriptedCaller, SoundLibrary, place_pivot_call
from ivr.tts import TtsCache

Answer = Callable[[int, dict[str, str]], Response]


def flow(*modules: dict[str, Any]) -> Response:
    node: dict[str, Any] = {}
    for module in reversed(modules):
        node = {**module, "children": {"_": node} if node else {}}
    return Response(json.dumps(node), media_type="application/json")


def play(url: str) -> dict[str, Any]:
    return {"module": "play", "data": {"id": url, "terminators": []}}


def pivot(url: str) -> dict[str, Any]:
    return {"module": "pivot", "data": {"voice_url": url, "req_format": "kazoo"}}


@dataclass
class Scripted:
    """A pivot server answering request n with `answers[n]`; it keeps each request's raw query."""

    answers: list[Answer] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    url: str = ""
    never: asyncio.Event = field(default_factory=asyncio.Event)

    async def endpoint(self, request: Request) -> Response:
        self.queries.append(request.url.query)
        n = len(self.queries) - 1
        return self.answers[n](n, dict(parse_qsl(request.url.query)))

    def prompt(self, prompt_id: str, language: str = "en") -> str:
        return f"{self.url}/media/sounds/{language}/keybox/{prompt_id}.wav"


@pytest.fixture
async def server() -> AsyncIterator[Scripted]:
    scripted = Scripted()
    http = EmbeddedHttpServer(Starlette(routes=[Route("/kazoo/pivot/{route}", scripted.endpoint)]))
    scripted.url = await http.start()
    try:
        yield scripted
    finally:
        scripted.never.set()
        await http.stop()


async def call(server: Scripted, sounds: SoundLibrary, keys: str = "", **options: Any) -> Any:
    options = {"caller": ScriptedCaller(keys), "secret": "s3cret", "call_id": "call-1", **options}
    return await place_pivot_call(server.url, "keybox", sounds=sounds, timeout=10, **options)


async def test_a_question_and_the_digits_as_kazoo_sends_them(server: Scripted, sounds: SoundLibrary,
                                                              tts: TtsCache) -> None:
    name = await tts.render("Jane Agent", "en")
    back = f"{server.url}/kazoo/pivot/keybox?secret=s3cret&turn=1"
    server.answers = [
        lambda n, q: flow(play(f"{server.url}/media/{name}.wav"),
                          {"module": "play", "data": {"id": server.prompt("enter-pin")}},
                          {"module": "collect_dtmf", "data": {"max_digits": 4, "collection_name": "ivr"}},
                          pivot(back)),
        lambda n, q: flow(play(server.prompt("goodbye")), {"module": "hangup", "data": {}}),
    ]
    result = await call(server, sounds, "12#", caller_id="+15555550100")

    first, second = (dict(parse_qsl(q)) for q in server.queries)
    assert first["secret"] == "s3cret"
    assert {k: first[k] for k in ("Call-ID", "Caller-ID-Number", "Direction", "Api-Version")} == {
        "Call-ID": "call-1", "Caller-ID-Number": "+15555550100", "Direction": "inbound", "Api-Version": "4.x"}
    assert "Digits[ivr]" not in first
    assert server.queries[1].startswith("secret=s3cret&turn=1&")  # Kazoo's parameters after the URL's own
    assert "&Digits[ivr]=12" in server.queries[1]  # brackets as Kazoo leaves them; `#` not kept
    assert second["Digits[ivr]"] == "12"  # not the `#` after it
    assert [e.kind for e in result.transcript.events] == ["answer", "tts", "prompt", "pressed", "prompt", "hangup"]
    assert result.transcript.spoken == ["Jane Agent"]
    assert result.transcript.prompts == ["enter-pin", "goodbye"]
    assert result.ended_by == "service" and result.requests == 2 and result.failure is None


async def test_collect_dtmf_stops_at_max_digits_and_an_empty_entry_is_sent_empty(
        server: Scripted, sounds: SoundLibrary) -> None:
    ask = {"module": "collect_dtmf", "data": {"max_digits": 2, "collection_name": "ivr"}}
    back = pivot(f"{server.url}/kazoo/pivot/keybox")
    server.answers = [lambda n, q: flow(ask, back), lambda n, q: flow(ask, back),
                      lambda n, q: flow({"module": "hangup", "data": {}})]
    await call(server, sounds, "12#_")
    assert dict(parse_qsl(server.queries[1], keep_blank_values=True))["Digits[ivr]"] == "12"  # not the `#` after it
    assert dict(parse_qsl(server.queries[2], keep_blank_values=True))["Digits[ivr]"] == ""


async def test_digit_renders_in_a_row_are_heard_as_digits(server: Scripted, sounds: SoundLibrary,
                                                           tts: TtsCache) -> None:
    digits = [f"{server.url}/media/{await tts.render(d, 'en')}.wav" for d in "407"]
    server.answers = [lambda n, q: flow(play(server.prompt("your-update-code-is")), *map(play, digits),
                                        play(server.prompt("goodbye")), {"module": "hangup", "data": {}})]
    result = await call(server, sounds)
    assert result.transcript.said_digits == ["407"]
    assert result.transcript.prompts == ["your-update-code-is", "goodbye"]


async def test_a_caller_hanging_up_during_the_digits_makes_kazoo_stop_asking(
        server: Scripted, sounds: SoundLibrary, tts: TtsCache) -> None:
    digit = f"{server.url}/media/{await tts.render('4', 'en')}.wav"
    server.answers = [lambda n, q: flow(play(digit), pivot(f"{server.url}/kazoo/pivot/keybox"))]
    result = await call(server, sounds, caller=ScriptedCaller(hangup_on="digits"))
    assert result.ended_by == "caller" and result.transcript.hung_up_by == "caller"
    assert len(server.queries) == 1


async def test_a_transfer_and_its_variables(server: Scripted, sounds: SoundLibrary) -> None:
    server.answers = [lambda n, q: flow(
        {"module": "set_variables", "data": {"custom_application_vars": {"IVR_LAST_STEP": "enter-pin"}}},
        {"module": "callflow", "data": {"id": "agents"}})]
    result = await call(server, sounds)
    assert result.ended_by == "transfer" and result.transferred_to == "agents"
    assert result.transcript.transferred_to == "agents"
    assert result.transcript.variables == {"IVR_LAST_STEP": "enter-pin"}


async def test_a_callflow_that_runs_out_ends_the_call(server: Scripted, sounds: SoundLibrary) -> None:
    server.answers = [lambda n, q: flow(play(server.prompt("goodbye")))]
    result = await call(server, sounds)
    assert result.ended_by == "flow_end" and result.transcript.hung_up_by == "service"


@pytest.mark.parametrize(("response", "failure"), [
    (Response("nope", status_code=500), "HTTP 500"),
    (Response("nope", status_code=404), "HTTP 404"),
    (Response("<Response><Hangup/></Response>", media_type="text/xml"), "content type text/xml is read as TwiML"),
    (Response("{not json", media_type="application/json"), "invalid JSON"),
    (Response(b'{"module": "hangup"}', headers={"content-type": ""}), "content type (none) is read as TwiML"),
    (Response("[]", media_type="application/json"), "not a callflow"),
])
async def test_answers_kazoo_fails_on_end_the_call(server: Scripted, sounds: SoundLibrary, response: Response,
                                                    failure: str) -> None:
    server.answers = [lambda n, q: response]
    result = await call(server, sounds)
    assert result.ended_by == "failure" and result.failure == failure
    assert result.transcript.notes == [f"pivot failed: {failure}; Kazoo ends the call"]


async def test_an_empty_body_ends_the_call(server: Scripted, sounds: SoundLibrary) -> None:
    server.answers = [lambda n, q: Response(b"", media_type="application/json")]
    result = await call(server, sounds)
    assert result.failure is None and result.ended_by == "flow_end"
    assert result.transcript.prompts == []


async def test_an_answer_later_than_kazoo_waits_is_a_failure(server: Scripted, sounds: SoundLibrary) -> None:
    async def late(request: Request) -> Response:
        server.queries.append(request.url.query)
        await server.never.wait()  # released when the test ends
        return flow({"module": "hangup", "data": {}})

    server.endpoint = late  # type: ignore[method-assign]
    http = EmbeddedHttpServer(Starlette(routes=[Route("/kazoo/pivot/{route}", late)]))
    server.url = await http.start()
    try:
        result = await call(server, sounds, request_timeout=0.2)
    finally:
        server.never.set()
        await http.stop()
    assert result.ended_by == "failure" and result.failure == "no answer within 0.2 s"
    assert 0.2 <= result.slowest < 1.0
