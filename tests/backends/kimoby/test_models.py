"""Kimoby's models: ids as numbers or strings, the webhook key under either name, unknown fields
ignored, a body that does not fit an `SmsUnavailableError` that names the field, not its value."""

from __future__ import annotations

import pytest

from ivr.backends.kimoby import Customer, Message, MessageStatus, Webhook, WebhookEnvelope
from ivr.backends.kimoby._models import parse
from ivr.errors import SmsUnavailableError

GUIDE_CUSTOMER = {
    "id": "cueeadfbacc5d64682bd20ac077d592e83", "reference": "CU000001", "name": "John Doe",
    "cell_phone_number": "+14182031234", "email": "", "is_unsubscribed": False,
    "phones": {"home": "", "work": "+1 (877) 247-9367"}, "custom_attributes": {"vehicle_year": "2012"},
    "created_at": "2016-06-28T15:26:58+00:00", "updated_at": "2016-06-28T15:27:04+00:00",
}


def test_the_guides_customer_reads() -> None:
    customer = Customer.model_validate(GUIDE_CUSTOMER)
    assert (customer.id, customer.reference, customer.is_unsubscribed, customer.has_cell_phone) == (
        "cueeadfbacc5d64682bd20ac077d592e83", "CU000001", False, True)
    assert "+14182031234" not in repr(customer)


def test_a_customer_without_a_cell_phone() -> None:
    assert not Customer.model_validate(GUIDE_CUSTOMER | {"cell_phone_number": None}).has_cell_phone
    assert not Customer.model_validate(GUIDE_CUSTOMER | {"cell_phone_number": " "}).has_cell_phone


def test_ids_as_numbers_are_strings() -> None:
    message = Message.model_validate({"id": 345634563, "customer_id": 12, "status": "sent", "body": "x"})
    assert (message.id, message.customer_id) == ("345634563", "12")
    with pytest.raises(SmsUnavailableError):
        parse(Message, {"id": True, "status": "sent"}, "message")


def test_the_webhook_key_under_either_name() -> None:
    for name in ("authentication_key", "key_authentication"):
        webhook = Webhook.model_validate({"id": "WH1", "url": "https://x.test/", name: "s3cret"})
        assert webhook.authentication_key == "s3cret" and "s3cret" not in repr(webhook)
    assert Webhook.model_validate({"id": "WH1", "url": "https://x.test/"}).authentication_key is None


def test_every_status_of_the_guide() -> None:
    statuses = "queued, sending, sent,receiving, received, delivered, undelivered, failed"
    assert [s.value for s in MessageStatus] == [s.strip() for s in statuses.split(",")]
    assert {s for s in MessageStatus if s.final} == {
        MessageStatus.RECEIVED, MessageStatus.DELIVERED, MessageStatus.UNDELIVERED, MessageStatus.FAILED}


def test_a_body_that_is_not_the_model_names_the_field_not_the_value() -> None:
    with pytest.raises(SmsUnavailableError, match=r"not its model \(message, status") as caught:
        parse(Message, {"id": 1, "status": "code 7654321", "body": "code 7654321"}, "message")
    assert "7654321" not in str(caught.value)


def test_an_event_id_is_the_same_for_the_same_event_whatever_its_id_type() -> None:
    def event(message_id: object, status: str = "sent") -> WebhookEnvelope:
        return WebhookEnvelope.model_validate({"event_name": "message_updated", "data": {
            "id": message_id, "status": status, "updated_at": "2019-02-21T14:39:03-05:00", "body": "x"}})

    assert event(42).event_id == event("42").event_id
    assert event(42).event_id != event(42, "delivered").event_id
    assert event(42).event_id != event(43).event_id
