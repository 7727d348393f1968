"""The pivot endpoint: who gets an answer, bounded input, and which `Call-ID` starts a flow."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from ivr.transports.pivot import COLLECTION, PivotApp, PivotCall

SECRET = "kazoo-pivot-secret-0123456789"
BASE = "https://ivr.example.com"


class Flows:
    """A small flow per call: a PIN question, then what was typed is judged, then goodbye."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.entries: list[str] = []
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, call: PivotCall) -> None:
        self.started.append(call.call_id)
        await self.release.wait()
        entry = await call.read_digits("keybox/enter-pin", 100, 4)
        self.entries.append(entry.digits)
        await call.play("keybox/goodbye")
        await call.hangup()


def make_app(flows: Flows, **options: Any) -> tuple[PivotApp, httpx.AsyncClient]:
    options = {"secret": SECRET, "hangup_margin": 0.2, "play_allowance": 0.0, **options}
    app = PivotApp(flows, public_url=BASE, **options)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=Starlette(routes=app.routes)),
                               base_url="http://testserver")
    return app, client


@pytest.fixture
def flows() -> Flows:
    return Flows()


@pytest.fixture
async def client(flows: Flows) -> AsyncIterator[httpx.AsyncClient]:
    app, http = make_app(flows)
    async with http:
        yield http
    await app.drain(0.5)


def modules(answer: httpx.Response) -> list[str]:
    """The modules of a callflow answer, first to last."""
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    found, node = [], answer.json()
    while node:
        found.append(node["module"] if node["module"] != "play" else node["data"]["id"].rsplit("/", 1)[-1])
        node = node.get("children", {}).get("_")
    return found


def first(call_id: str = "c1", **extra: str) -> dict[str, str]:
    return {"Call-ID": call_id, "Caller-ID-Number": "+15555550100", "Direction": "inbound", **extra}


async def test_a_first_request_starts_the_flow_and_the_digits_resume_it(client: httpx.AsyncClient,
                                                                         flows: Flows) -> None:
    answer = await client.get("/kazoo/pivot/keybox", params={"secret": SECRET, **first()})
    assert modules(answer) == ["enter-pin.wav", "collect_dtmf", "pivot"]
    assert flows.started == ["c1"]
    answer = await client.get("/kazoo/pivot/keybox", params={
        "secret": SECRET, "turn": "1", **first(), f"Digits[{COLLECTION}]": "2580"})
    assert modules(answer) == ["goodbye.wav", "hangup"]
    assert flows.entries == ["2580"]


async def test_post_form_as_kazoo_sends_it(client: httpx.AsyncClient, flows: Flows) -> None:
    answer = await client.post("/kazoo/pivot/keybox?secret=" + SECRET, data=first())
    assert modules(answer)[-1] == "pivot"
    answer = await client.post(f"/kazoo/pivot/keybox?secret={SECRET}&turn=1",
                               data={**first(), f"Digits[{COLLECTION}]": "12a4"})
    assert modules(answer)[-1] == "hangup"
    assert flows.entries == ["?"]  # letters: an invalid entry for the flow, not a crash


@pytest.mark.parametrize("query", [{}, {"secret": ""}, {"secret": SECRET[:-1]}, {"secret": SECRET + "x"}])
async def test_without_the_secret_401_and_no_flow(client: httpx.AsyncClient, flows: Flows,
                                                   query: dict[str, str]) -> None:
    answer = await client.get("/kazoo/pivot/keybox", params={**query, **first()})
    assert answer.status_code == 401
    assert flows.started == []


async def test_an_address_outside_the_allow_list_gets_403(flows: Flows) -> None:
    _, http = make_app(flows, allow=[ipaddress.ip_network("10.0.0.0/8")])
    async with http:
        answer = await http.get("/kazoo/pivot/keybox", params={"secret": SECRET, **first()})
    assert answer.status_code == 403
    assert flows.started == []


async def test_nothing_configured_refuses_everyone(flows: Flows) -> None:
    _, http = make_app(flows, secret="")
    async with http:
        answer = await http.get("/kazoo/pivot/keybox", params=first())
    assert answer.status_code == 401
    assert flows.started == []


async def test_an_allow_list_alone_is_enough(flows: Flows) -> None:
    app, http = make_app(flows, secret="", allow=[ipaddress.ip_network("127.0.0.0/8")])
    async with http:
        answer = await http.get("/kazoo/pivot/keybox", params=first())
    assert modules(answer)[-1] == "pivot"
    await app.drain(0.1)


@pytest.mark.parametrize("params", [{}, {"Call-ID": ""}, {"Call-ID": "x" * 300}, {"Call-ID": "a b"}])
async def test_a_request_without_a_usable_call_id_is_400(client: httpx.AsyncClient, flows: Flows,
                                                         params: dict[str, str]) -> None:
    answer = await client.get("/kazoo/pivot/keybox", params={"secret": SECRET, **params})
    assert answer.status_code == 400
    assert flows.started == []


async def test_a_route_that_cannot_be_ours_is_404(client: httpx.AsyncClient, flows: Flows) -> None:
    answer = await client.get("/kazoo/pivot/Key%20Box", params={"secret": SECRET, **first()})
    assert answer.status_code == 404


async def test_a_huge_body_is_413_and_starts_nothing(client: httpx.AsyncClient, flows: Flows) -> None:
    answer = await client.post(f"/kazoo/pivot/keybox?secret={SECRET}", content=b"Call-ID=c1&x=" + b"1" * 70_000,
                               headers={"content-type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 413
    assert flows.started == []


async def test_ten_thousand_digits_in_the_query_are_an_invalid_entry(client: httpx.AsyncClient,
                                                                      flows: Flows) -> None:
    await client.get("/kazoo/pivot/keybox", params={"secret": SECRET, **first()})
    answer = await client.get("/kazoo/pivot/keybox", params={
        "secret": SECRET, "turn": "1", **first(), f"Digits[{COLLECTION}]": "1" * 10_000})
    assert modules(answer)[-1] == "hangup"
    assert flows.entries == ["?"]


async def test_a_resumed_request_for_an_unknown_call_is_refused_politely(client: httpx.AsyncClient,
                                                                          flows: Flows) -> None:
    for extra in ({"turn": "3"}, {f"Digits[{COLLECTION}]": "1"}):  # a restart under a call in progress
        answer = await client.get("/kazoo/pivot/keybox", params={"secret": SECRET, **extra, **first("lost")})
        assert modules(answer) == ["system-unavailable.wav", "hangup"]
    assert flows.started == []


async def test_a_reused_call_id_gets_no_second_flow(client: httpx.AsyncClient, flows: Flows) -> None:
    await client.get("/kazoo/pivot/keybox", params={"secret": SECRET, **first()})
    await client.get("/kazoo/pivot/keybox", params={"secret": SECRET, "turn": "1", **first(),
                                                    f"Digits[{COLLECTION}]": "1234"})
    answer = await client.get("/kazoo/pivot/keybox", params={"secret": SECRET, **first()})
    assert modules(answer) == ["system-unavailable.wav", "hangup"]
    assert flows.started == ["c1"]


async def test_past_twice_the_cap_a_new_call_is_refused_without_a_flow(flows: Flows) -> None:
    """Past `max_calls` the handler refuses (the service's does, with a record); past twice as many
    flows (a flood) the transport refuses on its own."""
    app, http = make_app(flows, max_calls=1, hangup_margin=30)
    async with http:
        for call_id in ("a", "b"):
            assert modules(await http.get("/kazoo/pivot/keybox", params={"secret": SECRET, **first(call_id)}))[-1] \
                == "pivot"
        answer = await http.get("/kazoo/pivot/keybox", params={"secret": SECRET, **first("c")})
        assert modules(answer) == ["system-unavailable.wav", "hangup"]
        assert flows.started == ["a", "b"]
        assert app.active == 2
        await app.drain(0.05)  # the suspended flows end, recorded ...
        assert app.active == 0
        answer = await http.get("/kazoo/pivot/keybox", params={"secret": SECRET, "turn": "1", **first("a"),
                                                               f"Digits[{COLLECTION}]": "1234"})
        assert modules(answer) == ["system-unavailable.wav", "hangup"]  # ... and Kazoo is told so
        answer = await http.get("/kazoo/pivot/keybox", params={"secret": SECRET, **first("d")})
        assert modules(answer) == ["system-unavailable.wav", "hangup"]  # no new call while draining
    assert flows.started == ["a", "b"]


async def test_suspended_flows_end_on_their_own_when_kazoo_stops_asking(flows: Flows) -> None:
    app, http = make_app(flows, hangup_margin=0.05)
    async with http:
        for n in range(20):  # a flood of made-up Call-IDs
            await http.get("/kazoo/pivot/keybox", params={"secret": SECRET, **first(f"fake-{n}")})
        await asyncio.wait_for(app.calls.wait_call("fake-19", 5.0), 5.0)
        for n in range(20):
            await app.wait_call(f"fake-{n}", 5.0)
    assert app.active == 0


async def test_the_query_of_the_voice_url_reaches_the_flow(flows: Flows) -> None:
    seen: list[dict[str, str]] = []

    async def handler(call: PivotCall) -> None:
        seen.append(call.variables)
        await call.hangup()

    app = PivotApp(handler, public_url=BASE, secret=SECRET)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=Starlette(routes=app.routes)),
                                 base_url="http://t") as http:
        answer = await http.get("/kazoo/pivot/announce", params={
            "secret": SECRET, "job": "j1", **first(), "Custom-Application-Vars[attempt]": "j1-1", "To": "5551234"})
    assert modules(answer) == ["hangup"]
    assert seen == [{"job": "j1", "attempt": "j1-1"}]


async def test_a_query_with_hundreds_of_parameters_is_400(client: httpx.AsyncClient, flows: Flows) -> None:
    junk = "&".join(f"x{n}=1" for n in range(300))
    answer = await client.get(f"/kazoo/pivot/keybox?secret={SECRET}&Call-ID=c1&{junk}")
    assert answer.status_code == 401  # the secret cannot even be read from it: never a 500, never a flow
    assert flows.started == []


async def test_a_late_request_after_the_call_was_given_up_is_told_so(flows: Flows) -> None:
    app, http = make_app(flows, hangup_margin=0.05)
    async with http:
        await http.get("/kazoo/pivot/keybox", params={"secret": SECRET, **first()})
        await app.wait_call("c1", 5.0)  # nobody came back in time: the flow has ended
        answer = await http.get("/kazoo/pivot/keybox", params={"secret": SECRET, "turn": "1", **first(),
                                                               f"Digits[{COLLECTION}]": "1234"})
    assert modules(answer) == ["system-unavailable.wav", "hangup"]
    assert flows.entries == []
