"""The Kimoby sandbox over raw HTTP: its customers, the statuses a message goes through, auth,
pagination, fault knobs, and webhooks delivered signed and retried on schedule."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ivr.backends.kimoby import KimobyClient, verify
from ivr.backends.kimoby.sandbox import (
    KIMOBY_RETRY_SCHEDULE,
    SANDBOX_API_KEY,
    SANDBOX_API_SECRET,
    SEED_CUSTOMERS,
    UNKNOWN_REFERENCE,
    KimobyKnobs,
    KimobySandbox,
    KimobySandboxServer,
    customer_id_for,
    seed_customer_lines,
    serve_kimoby_sandbox,
)
from ivr.backends.kimvoice.sandbox import SEED_KEYS, UNKNOWN_KEY
from ivr.embedded_http import EmbeddedHttpServer
from ivr.errors import SmsUnavailableError

AUTH = "Basic " + base64.b64encode(f"{SANDBOX_API_KEY}:{SANDBOX_API_SECRET}".encode()).decode()
FINAL = ("delivered", "undelivered", "failed")


@pytest.fixture
async def api(server: KimobySandboxServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.api_url, headers={"Authorization": AUTH}) as http:
        yield http


async def final_status(sandbox: KimobySandbox, message_id: int) -> dict[str, Any]:
    """The message once it has ended, and every delivery of its events done."""
    async with asyncio.timeout(5):
        while sandbox.messages[message_id]["status"] not in FINAL:
            await asyncio.sleep(0.005)
        await sandbox.sender.idle()
    return sandbox.messages[message_id]


def test_the_customers_are_the_kimvoice_sandboxs_keys() -> None:
    assert [c.reference for c in SEED_CUSTOMERS] == [str(k.key_number) for k in SEED_KEYS]
    assert str(UNKNOWN_KEY) == UNKNOWN_REFERENCE
    assert [c.reference for c in SEED_CUSTOMERS if c.cell_phone_number is None] == ["456789"]
    assert [c.reference for c in SEED_CUSTOMERS if c.is_unsubscribed] == ["567890"]
    assert len(seed_customer_lines()) == len(SEED_CUSTOMERS) + 1


async def test_a_customer_is_found_by_reference_id_or_cell_phone(api: httpx.AsyncClient) -> None:
    by_reference = (await api.get("/customers", params={"reference": "123456"})).json()
    assert by_reference["id"] == customer_id_for("123456") and by_reference["is_unsubscribed"] is False
    assert (await api.get("/customers", params={"id": by_reference["id"]})).json() == by_reference
    assert (await api.get(f"/customers/{by_reference['id']}")).json() == by_reference
    phone = by_reference["cell_phone_number"]
    assert (await api.get("/customers", params={"cell_phone_number": phone})).json() == by_reference
    missing = await api.get("/customers", params={"reference": UNKNOWN_REFERENCE})
    assert missing.status_code == 404 and missing.json() == {"message": "Customer not found"}


async def test_lists_page_by_at_most_50(api: httpx.AsyncClient) -> None:
    listed = (await api.get("/customers", params={"page": 1, "per_page": 4})).json()
    assert len(listed["customers"]) == 4
    assert listed["pagination"] == {"page": 1, "pages": 2, "items": len(SEED_CUSTOMERS), "per_page": 4}
    assert (await api.get("/customers", params={"per_page": 51})).status_code == 400
    assert (await api.get("/customers", params={"page": 0})).status_code == 400


async def test_every_call_wants_basic_auth(server: KimobySandboxServer) -> None:
    async with httpx.AsyncClient(base_url=server.api_url) as http:
        assert (await http.get("/customers", params={"reference": "123456"})).status_code == 401
        wrong = "Basic " + base64.b64encode(f"{SANDBOX_API_KEY}:nope".encode()).decode()
        refused = await http.get("/customers", params={"reference": "123456"}, headers={"Authorization": wrong})
        assert refused.status_code == 401 and refused.json() == {"message": "Unauthorized"}


@pytest.mark.parametrize(("reference", "statuses", "error"), [
    ("123456", ["queued", "sent", "delivered"], None),
    ("345678", ["queued", "sent", "undelivered"], "Unreachable destination handset"),
    ("678901", ["queued", "failed"], "Invalid destination number"),
])
async def test_a_message_goes_through_its_statuses(server: KimobySandboxServer, api: httpx.AsyncClient,
                                                   reference: str, statuses: list[str], error: str | None) -> None:
    hook = (await api.post("/webhooks", json={"url": "http://127.0.0.1:9/unreachable"})).json()
    answer = await api.post("/messages", json={"customer": {"reference": reference}, "body": "Hello"})
    assert answer.status_code == 201 and answer.json()["status"] == "queued"
    message_id = answer.json()["id"]
    assert isinstance(message_id, int)  # the guide's examples: numbers
    await api.delete(f"/webhooks/{hook['id']}")  # its events were made, none is delivered
    ended = await final_status(server.sandbox, message_id)
    assert ended["status"] == statuses[-1] and ended["error"] == error
    assert (await api.get(f"/messages/{message_id}")).json()["status"] == statuses[-1]


@pytest.mark.parametrize(("reference", "message"), [
    ("456789", "Customer has no cell phone number"),
    ("567890", "Customer is unsubscribed"),
    (UNKNOWN_REFERENCE, "Customer not found"),
])
async def test_a_message_no_customer_can_get_is_refused(api: httpx.AsyncClient, reference: str,
                                                        message: str) -> None:
    refused = await api.post("/messages", json={"customer": {"reference": reference}, "body": "Hello"})
    assert refused.status_code in (400, 404) and refused.json() == {"message": message}


async def test_a_body_over_1600_characters_is_refused(server: KimobySandboxServer, api: httpx.AsyncClient) -> None:
    refused = await api.post("/messages", json={"customer": {"reference": "123456"}, "body": "x" * 1601})
    assert refused.status_code == 400 and "1600" in refused.json()["message"]
    assert server.sandbox.messages == {}


async def test_fail_next_429_carries_retry_after(server: KimobySandboxServer, api: httpx.AsyncClient) -> None:
    knobs = await api.patch(f"{server.url}/sandbox/knobs", json={"fail_next": [429, 503], "retry_after": 7})
    assert knobs.json()["fail_next"] == [429, 503]
    first = await api.get("/customers", params={"reference": "123456"})
    assert first.status_code == 429 and first.headers["retry-after"] == "7"
    assert (await api.get("/customers", params={"reference": "123456"})).status_code == 503
    assert (await api.get("/customers", params={"reference": "123456"})).status_code == 200
    counters = (await api.get(f"{server.url}/sandbox/counters")).json()
    assert counters["requests"]["GET /customers"] == 3


def test_the_default_schedule_is_the_guides() -> None:
    assert KimobyKnobs().retry_schedule == [0, 60, 600, 3600, 3 * 3600, 6 * 3600]
    assert len(KIMOBY_RETRY_SCHEDULE) == 6 and sum(KIMOBY_RETRY_SCHEDULE) / 3600 > 10


class Collector:
    """A loopback webhook endpoint that answers the statuses of `answers` in turn, then 200."""

    def __init__(self, answers: list[int]) -> None:
        self.answers = answers
        self.received: list[tuple[bytes, str | None]] = []
        self.http = EmbeddedHttpServer(Starlette(routes=[Route("/hook", self.endpoint, methods=["POST"])]))

    async def endpoint(self, request: Request) -> Response:
        self.received.append((await request.body(), request.headers.get("x-kimoby-signature")))
        return Response(status_code=self.answers.pop(0) if self.answers else 200)


async def test_deliveries_are_signed_and_retried_with_the_same_bytes(server: KimobySandboxServer,
                                                                     api: httpx.AsyncClient) -> None:
    collector = Collector([500, 404])
    async with collector.http:
        url = f"{collector.http.url}/hook"
        webhook = (await api.post("/webhooks", json={"url": url, "events": ["message_created"]})).json()
        sent = (await api.post("/messages", json={"customer": {"reference": "123456"}, "body": "Hello"})).json()
        await final_status(server.sandbox, sent["id"])
    assert len(collector.received) == 3  # message_created only: 500, 404, then 200
    assert len({body for body, _ in collector.received}) == 1
    body, signature = collector.received[0]
    assert verify(webhook["authentication_key"], url, body, signature)
    assert json.loads(body)["event_name"] == "message_created"
    assert [(d.attempt, d.status) for d in server.sandbox.sender.deliveries] == [(1, 500), (2, 404), (3, 200)]


async def test_a_410_deletes_the_webhook(server: KimobySandboxServer, api: httpx.AsyncClient) -> None:
    # One event a message: a slow 410 must not race the message's later events to the receiver.
    collector = Collector([410])
    async with collector.http:
        await api.post("/webhooks", json={"url": f"{collector.http.url}/hook", "events": ["message_created"]})
        first = (await api.post("/messages", json={"customer": {"reference": "123456"}, "body": "Hello"})).json()
        await final_status(server.sandbox, first["id"])
        assert (await api.get("/webhooks")).json() == []
        second = (await api.post("/messages", json={"customer": {"reference": "123456"}, "body": "Again"})).json()
        await final_status(server.sandbox, second["id"])
    assert len(collector.received) == 1
    assert [(d.attempt, d.status) for d in server.sandbox.sender.deliveries] == [(1, 410)]


async def test_a_receiver_that_never_accepts_gets_six_attempts(server: KimobySandboxServer,
                                                               api: httpx.AsyncClient) -> None:
    collector = Collector([500] * 10)
    async with collector.http:
        await api.post("/webhooks", json={"url": f"{collector.http.url}/hook", "events": ["message_created"]})
        sent = (await api.post("/messages", json={"customer": {"reference": "123456"}, "body": "Hello"})).json()
        await final_status(server.sandbox, sent["id"])
    assert len(collector.received) == 6


async def test_stop_and_start_texts_send_customer_events(server: KimobySandboxServer, api: httpx.AsyncClient) -> None:
    collector = Collector([])
    async with collector.http:
        await api.post("/webhooks", json={"url": f"{collector.http.url}/hook"})
        stopped = await api.post(f"{server.url}/sandbox/customers/123456/unsubscribe")
        assert stopped.json()["is_unsubscribed"] is True
        await server.sandbox.sender.idle()  # each event its own delivery: keep them in order
        refused = await api.post("/messages", json={"customer": {"reference": "123456"}, "body": "Hello"})
        assert refused.status_code == 400
        await api.post(f"{server.url}/sandbox/customers/123456/resubscribe")
        assert (await api.post(f"{server.url}/sandbox/customers/{UNKNOWN_REFERENCE}/unsubscribe")).status_code == 404
        await server.sandbox.sender.idle()
    names = [json.loads(body)["event_name"] for body, _ in collector.received]
    assert names == ["customer_unsubscribed", "customer_resubscribed"]


async def test_webhooks_list_without_keys_and_delete(api: httpx.AsyncClient) -> None:
    created = (await api.post("/webhooks", json={"url": "https://ivr.example.test/hook"})).json()
    assert created["authentication_key"]
    assert (await api.get("/webhooks")).json() == [{k: v for k, v in created.items() if k != "authentication_key"}]
    assert (await api.delete(f"/webhooks/{created['id']}")).status_code == 204
    assert (await api.delete(f"/webhooks/{created['id']}")).status_code == 404
    assert (await api.post("/webhooks", json={"url": "ftp://x"})).status_code == 400


async def test_a_body_that_is_too_large_or_not_json_is_refused(api: httpx.AsyncClient) -> None:
    assert (await api.post("/messages", content=b"x" * 70_000)).status_code == 413
    assert (await api.post("/messages", content=b"not json")).status_code == 400


async def test_the_standalone_sandbox_serves_until_cancelled() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serving = asyncio.create_task(serve_kimoby_sandbox("127.0.0.1", port, api_key="ops", api_secret="pw-1"))
    try:
        async with KimobyClient(f"http://127.0.0.1:{port}/v1", "ops", "pw-1", timeout=2.0) as kimoby:
            async with asyncio.timeout(5):
                while True:
                    try:
                        customer = await kimoby.find_customer("123456")
                        break
                    except SmsUnavailableError:
                        await asyncio.sleep(0.01)
        assert customer is not None and customer.id == customer_id_for("123456")
    finally:
        serving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await serving
