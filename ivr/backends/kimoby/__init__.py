"""Kimoby: the key holder's code by text message, and the webhooks that say how it went.

`KimobyClient` is the REST client (`send_code` is the one call the flow makes, through
`KimobyTexts`);
`WebhookReceiver` is the transport-free core of `POST /webhooks/kimoby`; `sign`/`verify` are
the webhook signature; `ivr.backends.kimoby.sandbox` is a stand-in server that signs and
retries its webhooks as Kimoby does.
"""

from ivr.backends.kimoby._client import MAX_PER_PAGE, KimobyClient, Unsubscribed, retry_after
from ivr.backends.kimoby._models import MAX_BODY_CHARS, Customer, Message, MessageStatus, Webhook, WebhookEnvelope
from ivr.backends.kimoby._signature import SIGNATURE_HEADER, sign, verify
from ivr.backends.kimoby._texts import KimobyTexts
from ivr.backends.kimoby._webhooks import (
    MAX_WEBHOOK_BYTES,
    DeliveryUpdate,
    KimobyEvent,
    MemorySeenEvents,
    SeenEvents,
    SubscriptionChange,
    WebhookReceiver,
)

__all__ = [
    "MAX_BODY_CHARS",
    "MAX_PER_PAGE",
    "MAX_WEBHOOK_BYTES",
    "SIGNATURE_HEADER",
    "Customer",
    "DeliveryUpdate",
    "KimobyClient",
    "KimobyEvent",
    "KimobyTexts",
    "MemorySeenEvents",
    "Message",
    "MessageStatus",
    "SeenEvents",
    "SubscriptionChange",
    "Unsubscribed",
    "Webhook",
    "WebhookEnvelope",
    "WebhookReceiver",
    "retry_after",
    "sign",
    "verify",
]
