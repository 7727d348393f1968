"""The Kimoby client against the sandbox on a real loopback socket: the code by text, the
customers no text may go to, retries, deadlines, errors, webhooks."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ivr.backends.kimoby import Customer, KimobyClient, MessageStatus, retry_after
from ivr.backends.kimoby.sandbox import (
    SANDBOX_API_KEY,
    SANDBOX_API_SECRET,
    KimobySandboxServer,
    customer_id_for,
)
from ivr.embedded_http import EmbeddedHttpServer
from ivr.errors import (
    SettingsError,
    SmsCredentialsError,
    SmsError,
    SmsInputError,
    SmsRecipientError,
    SmsRejectedError,
    SmsUnavailableError,
)

TEXT = "Your update code is 7654321. Press the up arrow, enter the code, then the up arrow again."


async def test_a_code_is_texted_to_the_key_holders_customer(server: KimobySandboxServer, client: KimobyClient) -> None:
    message = await client.send_code("123456", TEXT)
    assert message.status is MessageStatus.QUEUED
    stored = server.sandbox.messages[int(message.id)]
    assert stored["body"] == TEXT and stored["customer_id"] == customer_id_for("123456")
    assert server.sandbox.requests["GET /customers"] == 1 and server.sandbox.requests["POST /messages"] == 1


async def test_429_then_200_honours_retry_after_and_sends_one_message(server: KimobySandboxServer,
                                                                      client: KimobyClient, pauses: Any) -> None:
    server.sandbox.knobs.retry_after = 2
    server.sandbox.knobs.fail_next = [429]
    message = await client.send_message("123456", TEXT)
    assert message.id
    assert len(pauses.seconds) == 1 and pauses.seconds[0] >= 2
    assert server.sandbox.statuses["POST /messages", 429] == 1
    assert server.sandbox.statuses["POST /messages", 201] == 1
    assert len(server.sandbox.messages) == 1


async def test_500_three_times_is_unavailable_after_three_posts(server: KimobySandboxServer,
                                                                client: KimobyClient, pauses: Any) -> None:
    server.sandbox.knobs.fail_next = [500, 500, 500]
    with pytest.raises(SmsUnavailableError, match="HTTP 500, 3 times"):
        await client.send_message("123456", TEXT)
    assert server.sandbox.requests["POST /messages"] == 3
    assert len(pauses.seconds) == 2
    assert server.sandbox.messages == {}


async def test_an_unsubscribed_customer_gets_no_text(server: KimobySandboxServer, client: KimobyClient) -> None:
    with pytest.raises(SmsRecipientError, match="unsubscribed"):
        await client.send_code("567890", TEXT)
    assert server.sandbox.requests["POST /messages"] == 0


async def test_a_customer_without_a_cell_phone_gets_no_text(server: KimobySandboxServer,
                                                             client: KimobyClient) -> None:
    with pytest.raises(SmsRecipientError, match="no cell phone"):
        await client.send_code("456789", TEXT)
    assert server.sandbox.requests["POST /messages"] == 0


async def test_no_customer_no_text(server: KimobySandboxServer, client: KimobyClient) -> None:
    with pytest.raises(SmsRecipientError, match="no such customer"):
        await client.send_code("99999", TEXT)
    assert await client.find_customer("99999") is None
    assert server.sandbox.requests["POST /messages"] == 0


async def test_a_body_over_1600_characters_sends_nothing(server: KimobySandboxServer, client: KimobyClient) -> None:
    with pytest.raises(SmsInputError, match="1,600") as caught:
        await client.send_code("123456", "1" * 1601)
    assert isinstance(caught.value, ValueError)
    with pytest.raises(SmsInputError):
        await client.send_message("123456", "x" * 1601)
    assert sum(server.sandbox.requests.values()) == 0
    assert (await client.send_message("123456", "x" * 1600)).id  # the bound itself is allowed


@pytest.mark.parametrize("reference", ["", " 123456", "12\n34", "x" * 129])
async def test_a_reference_out_of_bounds_sends_nothing(server: KimobySandboxServer, client: KimobyClient,
                                                       reference: str) -> None:
    with pytest.raises(SmsInputError):
        await client.send_code(reference, TEXT)
    assert sum(server.sandbox.requests.values()) == 0


async def test_our_own_unsubscribe_records_are_honoured(server: KimobySandboxServer, client: KimobyClient) -> None:
    with pytest.raises(SmsRecipientError, match="our records"):
        await client.send_code("123456", TEXT, unsubscribed={customer_id_for("123456")})
    with pytest.raises(SmsRecipientError, match="our records"):
        await client.send_code("123456", TEXT, unsubscribed=frozenset({"123456"}))

    async def store_says(customer: Customer) -> bool:
        return customer.reference == "123456"

    with pytest.raises(SmsRecipientError, match="our records"):
        await client.send_code("123456", TEXT, unsubscribed=store_says)
    assert (await client.send_code("234567", TEXT, unsubscribed=store_says)).id
    assert server.sandbox.requests["POST /messages"] == 1


async def test_other_4xx_are_rejected_without_a_retry(server: KimobySandboxServer, client: KimobyClient,
                                                      pauses: Any) -> None:
    server.sandbox.knobs.fail_next = [422]
    with pytest.raises(SmsRejectedError) as caught:
        await client.send_message("123456", TEXT)
    assert caught.value.status == 422 and caught.value.message == "a fault the sandbox was told to answer"
    assert server.sandbox.requests["POST /messages"] == 1 and pauses.seconds == []


async def test_wrong_credentials_name_the_settings_not_the_secret(server: KimobySandboxServer) -> None:
    async with KimobyClient(server.api_url, SANDBOX_API_KEY, "not-the-secret-42", timeout=2.0) as kimoby:
        with pytest.raises(SmsCredentialsError) as caught:
            await kimoby.send_code("123456", TEXT)
    message = str(caught.value)
    assert isinstance(caught.value, SettingsError) and isinstance(caught.value, SmsError)
    assert "IVR_KIMOBY_API_KEY" in message and "IVR_KIMOBY_API_SECRET" in message
    assert "not-the-secret-42" not in message and caught.value.status == 401


def test_missing_credentials_or_url_are_settings_errors() -> None:
    with pytest.raises(SettingsError, match="IVR_KIMOBY_API_SECRET"):
        KimobyClient("https://api.kimoby.test/v1", "key", "")
    with pytest.raises(SettingsError, match="IVR_KIMOBY_URL"):
        KimobyClient("api.kimoby.test/v1", "key", "secret")


async def test_a_retry_after_longer_than_the_deadline_gives_up_at_once(server: KimobySandboxServer,
                                                                       pauses: Any) -> None:
    server.sandbox.knobs.retry_after = 30
    server.sandbox.knobs.fail_next = [429]
    async with KimobyClient(server.api_url, SANDBOX_API_KEY, SANDBOX_API_SECRET, timeout=4.0, sleep=pauses) as kimoby:
        with pytest.raises(SmsUnavailableError, match="asked to wait 30 s"):
            await kimoby.send_message("123456", TEXT)
    assert pauses.seconds == [] and server.sandbox.messages == {}


async def test_a_post_without_an_answer_in_time_is_not_sent_again(server: KimobySandboxServer, pauses: Any) -> None:
    server.sandbox.knobs.latency = 1.0
    async with KimobyClient(server.api_url, SANDBOX_API_KEY, SANDBOX_API_SECRET, timeout=0.3, sleep=pauses) as kimoby:
        with pytest.raises(SmsUnavailableError, match="no answer within"):
            await kimoby.send_message("123456", TEXT)
    server.sandbox.knobs.latency = 0
    assert pauses.seconds == []


async def test_a_lookup_is_tried_again_when_kimoby_is_not_reached(pauses: Any) -> None:
    async with KimobySandboxServer() as stopped:
        url = stopped.api_url
    async with KimobyClient(url, SANDBOX_API_KEY, SANDBOX_API_SECRET, timeout=2.0, sleep=pauses) as kimoby:
        with pytest.raises(SmsUnavailableError, match="cannot connect"):
            await kimoby.send_code("123456", TEXT)
    assert len(pauses.seconds) == 2


async def test_the_sandbox_down_is_unavailable(server: KimobySandboxServer, client: KimobyClient) -> None:
    server.sandbox.knobs.down = True
    with pytest.raises(SmsUnavailableError):
        await client.send_code("123456", TEXT)
    server.sandbox.knobs.down = False
    assert server.sandbox.messages == {}


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 12, 2, 16, 0, tzinfo=UTC).timestamp()
    assert retry_after("7", now) == 7.0
    assert retry_after(" 0 ", now) == 0.0
    assert retry_after(format_datetime(datetime(2026, 12, 2, 16, 0, 30, tzinfo=UTC), usegmt=True), now) == 30.0
    assert retry_after("Wed, 02 Dec 2026 15:59:00 GMT", now) == 0.0  # already past
    assert retry_after(None, now) is None
    assert retry_after("soon", now) is None
    assert retry_after("-5", now) is None


async def test_a_message_is_read_back_with_its_status(server: KimobySandboxServer, client: KimobyClient) -> None:
    sent = await client.send_code("123456", TEXT)
    read = await client.message(sent.id)
    assert read.id == sent.id and read.customer_id == customer_id_for("123456")
    assert TEXT not in repr(read)
    with pytest.raises(SmsRejectedError) as caught:
        await client.message("1")
    assert caught.value.status == 404
    with pytest.raises(SmsInputError):
        await client.message("../customers")


async def test_webhooks_are_created_with_their_key_listed_without_and_deleted(client: KimobyClient) -> None:
    created = await client.create_webhook("https://ivr.example.test/webhooks/kimoby")
    assert created.authentication_key and created.authentication_key not in repr(created)
    listed = await client.webhooks()
    assert [(w.id, w.url, w.authentication_key) for w in listed] == [
        (created.id, "https://ivr.example.test/webhooks/kimoby", None)]
    assert await client.delete_webhook(created.id) is True
    assert await client.delete_webhook(created.id) is False
    assert await client.webhooks() == []
    with pytest.raises(SmsInputError):
        await client.create_webhook("ftp://ivr.example.test/")


async def test_webhook_events_are_sent_only_when_asked(server: KimobySandboxServer, client: KimobyClient) -> None:
    every = await client.create_webhook("https://ivr.example.test/all")
    some = await client.create_webhook("https://ivr.example.test/some", ["message_updated"])
    assert server.sandbox.webhooks[every.id]["events"] == []
    assert server.sandbox.webhooks[some.id]["events"] == ["message_updated"]


@contextlib.asynccontextmanager
async def stub(answer: Callable[[Request], Response], **options: Any) -> AsyncIterator[KimobyClient]:
    """A client of a loopback server that answers every request with `answer(request)`."""

    async def endpoint(request: Request) -> Response:
        return answer(request)

    app = Starlette(routes=[Route("/{path:path}", endpoint, methods=["GET", "POST", "DELETE"])])
    async with EmbeddedHttpServer(app) as running, KimobyClient(f"{running.url}/v1", "key", "secret",
                                                                timeout=2.0, **options) as kimoby:
        yield kimoby


def _customer(n: int) -> dict[str, Any]:
    return {"id": n, "reference": f"KH{n}", "cell_phone_number": "+15555550000", "is_unsubscribed": False}


def kimoby_pages(key: str, items: list[dict[str, Any]], asked: list[dict[str, str]]) -> Callable[[Request], Response]:
    """A list answered as Kimoby pages it: `per_page` items a page, 25 when not asked."""

    def answer(request: Request) -> Response:
        query = dict(request.query_params)
        asked.append(query)
        page, per_page = int(query.get("page", "1")), int(query.get("per_page", "25"))
        return JSONResponse({key: items[(page - 1) * per_page: page * per_page],
                             "pagination": {"page": page, "pages": -(-len(items) // per_page),
                                            "items": len(items), "per_page": per_page}})
    return answer


async def test_a_customer_list_answer_is_searched_page_by_page_within_a_bound() -> None:
    asked: list[dict[str, str]] = []
    async with stub(kimoby_pages("customers", [_customer(n) for n in range(450)], asked), max_pages=3) as kimoby:
        found = await kimoby.find_customer("KH120")
        assert found is not None and found.id == "120"
        assert [q.get("page") for q in asked] == [None, "2", "3"]
        assert all(q["reference"] == "KH120" and q["per_page"] == "50" for q in asked)
        asked.clear()
        assert await kimoby.find_customer("KH400") is None  # past the bound of 3 pages
        assert len(asked) == 3


@pytest.mark.parametrize("position", [26, 38, 50])
async def test_a_customer_among_items_26_to_50_of_a_list_is_found(position: int) -> None:
    """Kimoby's first page is 25 items unless asked for more: a first page of 25 and then pages
    of 50 would never show items 26 to 50."""
    asked: list[dict[str, str]] = []
    async with stub(kimoby_pages("customers", [_customer(n) for n in range(1, 121)], asked)) as kimoby:
        found = await kimoby.find_customer(f"KH{position}")
    assert found is not None and found.id == str(position)
    assert asked == [{"reference": f"KH{position}", "per_page": "50"}]


async def test_webhooks_listed_in_pages_are_all_listed() -> None:
    hooks = [{"id": f"WH{n}", "url": f"https://ivr{n}.example.test/webhooks/kimoby"} for n in range(1, 61)]
    asked: list[dict[str, str]] = []
    async with stub(kimoby_pages("webhooks", hooks, asked)) as kimoby:
        listed = await kimoby.webhooks()
    assert [webhook.id for webhook in listed] == [f"WH{n}" for n in range(1, 61)]
    assert [(q.get("page"), q["per_page"]) for q in asked] == [(None, "50"), ("2", "50")]


async def test_a_customer_in_a_bare_array_is_found_by_its_exact_reference() -> None:
    async with stub(lambda _: JSONResponse([_customer(7) | {"reference": "kh7"}, _customer(7)])) as kimoby:
        found = await kimoby.find_customer("KH7")
    assert found is not None and found.reference == "KH7"


async def test_a_customer_with_another_reference_is_not_ours() -> None:
    async with stub(lambda _: JSONResponse(_customer(7) | {"reference": "kh7"})) as kimoby:
        assert await kimoby.find_customer("KH7") is None
        with pytest.raises(SmsRecipientError):
            await kimoby.send_code("KH7", TEXT)


@pytest.mark.parametrize(("answer", "match"), [
    (Response(b"<html>", 200), "not JSON"),
    (JSONResponse({"id": 1, "status": "teleported"}), "not its model"),
    (JSONResponse({"id": [1], "status": "queued"}, 201), "not its model"),
    (Response(status_code=302, headers={"Location": "https://elsewhere.test/"}), "HTTP 302"),
], ids=["html", "unknown-status", "id-a-list", "redirect"])
async def test_a_body_that_is_not_kimobys_is_unavailable(answer: Response, match: str) -> None:
    async with stub(lambda _: answer) as kimoby:
        with pytest.raises(SmsUnavailableError, match=match) as caught:
            await kimoby.message("1")
    assert "teleported" not in str(caught.value)


async def test_a_kimoby_error_message_is_bounded_and_masks_digits() -> None:
    refusal = JSONResponse({"message": "Body invalid: Your code is 7654321\n" + "x" * 500}, 400)
    async with stub(lambda _: refusal) as kimoby:
        with pytest.raises(SmsRejectedError) as caught:
            await kimoby.send_message("123456", TEXT)
    assert "7654321" not in str(caught.value) and "*****21" in caught.value.message
    assert len(caught.value.message) <= 160 and "\n" not in caught.value.message


async def test_ids_numbers_or_strings_and_the_key_under_either_name() -> None:
    def created(request: Request) -> Response:
        if request.url.path.endswith("/webhooks"):
            return JSONResponse({"id": "WH1", "url": "https://x.test/", "key_authentication": "s3cret"}, 201)
        return JSONResponse({"id": 345634563, "customer_id": "CU1", "status": "delivered", "body": TEXT,
                             "unknown": {"ignored": True}})

    async with stub(created) as kimoby:
        assert (await kimoby.create_webhook("https://x.test/")).authentication_key == "s3cret"
        assert (await kimoby.message("345634563")).id == "345634563"


async def test_no_log_line_holds_the_body_the_code_the_phone_or_the_secret(
        server: KimobySandboxServer, client: KimobyClient, log_text: io.StringIO) -> None:
    await client.send_code("123456", TEXT)
    with pytest.raises(SmsRecipientError):
        await client.send_code("567890", TEXT)
    server.sandbox.knobs.fail_next = [500]
    await client.send_message("234567", TEXT)
    logged = log_text.getvalue()
    lines = [json.loads(line) for line in logged.splitlines()]
    assert any(line["event"] == "kimoby.message_sent" for line in lines)
    for secret in ("7654321", "Your update code", "+15555550123", "5555550123", SANDBOX_API_SECRET):
        assert secret not in logged
