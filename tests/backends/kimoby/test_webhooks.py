"""The webhook receiver, transport-free: signature first, then size and JSON, 200 at once and the
event handled after, once."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest

from ivr.backends.kimoby import (
    MAX_WEBHOOK_BYTES,
    DeliveryUpdate,
    KimobyEvent,
    MessageStatus,
    SubscriptionChange,
    WebhookReceiver,
    sign,
)
from ivr.errors import SettingsError

KEY = "1vb3auxyhmRZ1AyuCdT4AzNS0fz2RL61Elowdhxw"
URL = "https://ivr.example.test/webhooks/kimoby"


def message_event(status: str = "sent", name: str = "message_updated", message_id: Any = 345634563,
                  error: str | None = None, updated_at: str = "2019-02-21T14:39:03-05:00") -> bytes:
    data = {"id": message_id, "customer_id": "CUc571a62c0639ef8c30807962698c3", "conversation_id": None,
            "body": "Your update code is 7654321", "element_type": "sent_message", "direction": "outgoing",
            "status": status, "error": error, "documents": [], "created_at": "2019-02-21T14:38:14-05:00",
            "updated_at": updated_at}
    return json.dumps({"data": data, "event_name": name}).encode()


def signed(body: bytes, key: str = KEY) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Kimoby-Signature": sign(key, URL, body) + "\n"}


class Recorder:
    def __init__(self) -> None:
        self.events: list[KimobyEvent] = []

    async def __call__(self, event: KimobyEvent) -> None:
        self.events.append(event)


@pytest.fixture
async def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def receiver(recorder: Recorder) -> Any:
    receiving = WebhookReceiver(KEY, URL, recorder)
    yield receiving
    await receiving.aclose()


async def test_a_validly_signed_event_is_answered_200_and_handled(receiver: WebhookReceiver,
                                                                  recorder: Recorder) -> None:
    body = message_event("delivered")
    assert await receiver.handle(signed(body), body) == (200, "ok")
    await receiver.join()
    assert recorder.events == [DeliveryUpdate(
        recorder.events[0].event_id, "345634563", MessageStatus.DELIVERED, None, recorder.events[0].updated_at)]


async def test_a_tampered_body_is_401_and_has_no_effect(receiver: WebhookReceiver, recorder: Recorder) -> None:
    body = message_event("delivered")
    headers = signed(body)
    assert (await receiver.handle(headers, body.replace(b"delivered", b"failed")))[0] == 401
    await receiver.join()
    assert recorder.events == []


async def test_a_wrong_key_is_401(receiver: WebhookReceiver, recorder: Recorder) -> None:
    body = message_event()
    assert (await receiver.handle(signed(body, key="not the key"), body))[0] == 401
    await receiver.join()
    assert recorder.events == []


async def test_a_missing_signature_header_is_401(receiver: WebhookReceiver, recorder: Recorder) -> None:
    body = message_event()
    assert (await receiver.handle({"Content-Type": "application/json"}, body))[0] == 401
    assert (await receiver.handle({"X-Kimoby-Signature": ""}, body))[0] == 401
    await receiver.join()
    assert recorder.events == []


async def test_a_header_with_a_trailing_newline_is_accepted(receiver: WebhookReceiver) -> None:
    body = message_event()
    assert (await receiver.handle({"X-Kimoby-Signature": sign(KEY, URL, body) + "\n"}, body))[0] == 200
    assert (await receiver.handle({"x-kimoby-signature": sign(KEY, URL, body)}, body))[0] == 200


async def test_a_replayed_event_has_one_effect(receiver: WebhookReceiver, recorder: Recorder) -> None:
    body = message_event("delivered")
    for _ in range(3):
        assert (await receiver.handle(signed(body), body))[0] == 200
    reformatted = json.dumps(json.loads(body), indent=2).encode()  # the same event, serialised anew
    assert (await receiver.handle(signed(reformatted), reformatted))[0] == 200
    await receiver.join()
    assert len(recorder.events) == 1


async def test_an_event_whose_handling_failed_counts_when_delivered_again() -> None:
    effects: list[KimobyEvent] = []
    failures = [RuntimeError("the store is down")]

    async def on_event(event: KimobyEvent) -> None:
        if failures:
            raise failures.pop()
        effects.append(event)

    receiver = WebhookReceiver(KEY, URL, on_event)
    body = message_event("delivered")
    try:
        for _ in range(3):  # Kimoby delivers again: the failed first try is not taken as handled
            assert (await receiver.handle(signed(body), body))[0] == 200
        await receiver.join()
    finally:
        await receiver.aclose()
    assert len(effects) == 1 and isinstance(effects[0], DeliveryUpdate)


async def test_each_status_of_a_message_is_its_own_event(receiver: WebhookReceiver, recorder: Recorder) -> None:
    for status in ("queued", "sent", "delivered"):
        body = message_event(status, updated_at="2019-02-21T14:39:03-05:00")
        await receiver.handle(signed(body), body)
    await receiver.join()
    assert [e.status for e in recorder.events if isinstance(e, DeliveryUpdate)] == [
        MessageStatus.QUEUED, MessageStatus.SENT, MessageStatus.DELIVERED]


async def test_a_2_mb_body_is_400_after_a_valid_signature_and_401_unsigned(receiver: WebhookReceiver,
                                                                            recorder: Recorder) -> None:
    body = b'{"data": {"id": 1, "status": "sent", "pad": "' + b"x" * (2 * MAX_WEBHOOK_BYTES) + b'"}, ' \
           b'"event_name": "message_updated"}'
    assert (await receiver.handle(signed(body), body))[0] == 400
    assert (await receiver.handle({}, body))[0] == 401
    await receiver.join()
    assert recorder.events == []


async def test_a_body_that_is_not_json_is_400(receiver: WebhookReceiver, recorder: Recorder) -> None:
    for body in (b"not json", b"", b"[" * 100_000):
        assert (await receiver.handle(signed(body), body))[0] == 400
    await receiver.join()
    assert recorder.events == []


@pytest.mark.parametrize("body", [
    b'{"event_name": "message_updated"}',
    b'{"data": [], "event_name": "message_updated"}',
    b'{"data": {"id": 1, "status": "teleported"}, "event_name": "message_updated"}',
    b'{"data": {"id": true, "status": "sent"}, "event_name": "message_updated"}',
    b'["message_updated"]',
], ids=["no-data", "data-not-object", "unknown-status", "id-not-id", "not-object"])
async def test_json_that_is_not_an_event_is_400(receiver: WebhookReceiver, body: bytes) -> None:
    assert await receiver.handle(signed(body), body) == (400, "body is not a Kimoby webhook event")


async def test_an_unknown_event_is_200_ignored_and_logged_once(receiver: WebhookReceiver, recorder: Recorder,
                                                               log_text: io.StringIO) -> None:
    for n in range(3):
        body = json.dumps({"data": {"id": n}, "event_name": "invoice_paid"}).encode()
        assert await receiver.handle(signed(body), body) == (200, "ignored")
    await receiver.join()
    assert recorder.events == []
    lines = [json.loads(line) for line in log_text.getvalue().splitlines()]
    assert [line["event_name"] for line in lines if line["event"] == "kimoby.webhook_ignored"] == ["invoice_paid"]


async def test_ids_as_numbers_or_strings_are_the_same_message(receiver: WebhookReceiver,
                                                              recorder: Recorder) -> None:
    first, second = message_event("sent", message_id=42), message_event("delivered", message_id="42")
    await receiver.handle(signed(first), first)
    await receiver.handle(signed(second), second)
    await receiver.join()
    assert [e.message_id for e in recorder.events if isinstance(e, DeliveryUpdate)] == ["42", "42"]


async def test_unsubscribe_and_resubscribe_are_handed_on(receiver: WebhookReceiver, recorder: Recorder) -> None:
    customer = {"id": "cueeadfbacc5d64682bd20ac077d592e83", "reference": "123456", "name": "Jane Agent",
                "cell_phone_number": "+14182031234", "is_unsubscribed": True,
                "updated_at": "2016-06-28T15:27:04+00:00"}
    for name in ("customer_unsubscribed", "customer_resubscribed"):
        body = json.dumps({"data": customer, "event_name": name}).encode()
        assert (await receiver.handle(signed(body), body))[0] == 200
    await receiver.join()
    changes = [e for e in recorder.events if isinstance(e, SubscriptionChange)]
    assert [(c.customer_id, c.reference, c.unsubscribed) for c in changes] == [
        ("cueeadfbacc5d64682bd20ac077d592e83", "123456", True),
        ("cueeadfbacc5d64682bd20ac077d592e83", "123456", False)]


async def test_a_full_queue_answers_503_so_that_kimoby_delivers_again() -> None:
    started, release = asyncio.Event(), asyncio.Event()
    handled: list[KimobyEvent] = []

    async def slow(event: KimobyEvent) -> None:
        started.set()
        await release.wait()
        handled.append(event)

    receiver = WebhookReceiver(KEY, URL, slow, queue_size=1)
    try:
        first, second, third = (message_event(status) for status in ("queued", "sent", "delivered"))
        assert (await receiver.handle(signed(first), first))[0] == 200
        await started.wait()  # the worker holds the first event; the queue is empty
        assert (await receiver.handle(signed(second), second))[0] == 200
        assert await receiver.handle(signed(third), third) == (503, "busy, deliver again later")
        release.set()
        await receiver.join()
        assert (await receiver.handle(signed(third), third))[0] == 200  # Kimoby's retry
        await receiver.join()
    finally:
        release.set()
        await receiver.aclose()
    assert [e.status for e in handled if isinstance(e, DeliveryUpdate)] == [
        MessageStatus.QUEUED, MessageStatus.SENT, MessageStatus.DELIVERED]


async def test_a_failing_handler_is_logged_and_the_next_event_still_handled(log_text: io.StringIO) -> None:
    handled: list[KimobyEvent] = []

    async def flaky(event: KimobyEvent) -> None:
        if not handled and isinstance(event, DeliveryUpdate) and event.status is MessageStatus.QUEUED:
            handled.append(event)
            raise RuntimeError("the store is locked")
        handled.append(event)

    receiver = WebhookReceiver(KEY, URL, flaky)
    try:
        for status in ("queued", "sent"):
            body = message_event(status)
            await receiver.handle(signed(body), body)
        await receiver.join()
    finally:
        await receiver.aclose()
    assert [e.status for e in handled if isinstance(e, DeliveryUpdate)] == [MessageStatus.QUEUED, MessageStatus.SENT]
    failed = [json.loads(line) for line in log_text.getvalue().splitlines() if "kimoby.webhook_failed" in line]
    assert len(failed) == 1 and failed[0]["error"] == "RuntimeError"


async def test_a_stopped_receiver_answers_503(recorder: Recorder) -> None:
    receiver = WebhookReceiver(KEY, URL, recorder)
    await receiver.aclose()
    body = message_event()
    assert (await receiver.handle(signed(body), body))[0] == 503


def test_an_empty_key_is_refused_at_start(recorder: Recorder) -> None:
    with pytest.raises(SettingsError, match="IVR_KIMOBY_WEBHOOK_KEY"):
        WebhookReceiver("", URL, recorder)


async def test_the_event_id_holds_neither_the_body_nor_the_code(receiver: WebhookReceiver,
                                                                recorder: Recorder) -> None:
    body = message_event("delivered")
    other = body.replace(b"7654321", b"1111111")  # the same event with another text: the same id
    await receiver.handle(signed(body), body)
    await receiver.handle(signed(other), other)
    await receiver.join()
    assert len(recorder.events) == 1
    assert "7654321" not in recorder.events[0].event_id
