"""The receiving end of Kimoby's webhooks, free of HTTP: the service's listener mounts it at
`POST /webhooks/kimoby` and answers what `WebhookReceiver.handle` returns.

Kimoby wants a 200 "as quickly as possible" and retries anything else, or no answer within
about 60 seconds, up to six times over some ten hours. So the receiver checks the signature
(401, no effect), the size (over 1 MB: 400) and the JSON (400), answers 200 at once and hands
the event to one worker task through a bounded queue: in order, one at a time. A full queue
answers 503, so that Kimoby delivers again later: an event answered 200 is never dropped
unhandled, and one that fails in its handler is logged. The same event delivered twice has one
effect: the worker asks a `SeenEvents` store first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pydantic import ValidationError

from ivr.backends.kimoby._models import Customer, Message, MessageStatus, WebhookEnvelope
from ivr.backends.kimoby._signature import SIGNATURE_HEADER, verify
from ivr.errors import SettingsError
from ivr.logging import ThrottledWarning, get_logger

__all__ = [
    "MAX_WEBHOOK_BYTES",
    "DeliveryUpdate",
    "KimobyEvent",
    "MemorySeenEvents",
    "SeenEvents",
    "SubscriptionChange",
    "WebhookReceiver",
]

log = get_logger("ivr.kimoby.webhooks")

MAX_WEBHOOK_BYTES = 1 << 20
"""The largest webhook body taken: a message event is a few hundred bytes."""
_MESSAGE_EVENTS = frozenset({"message_created", "message_updated"})
_CUSTOMER_EVENTS = frozenset({"customer_unsubscribed", "customer_resubscribed"})
_UNKNOWN_NAMES_LOGGED = 64
"""Unknown event names logged once each, up to this many (the names come from signed bodies)."""


@dataclass(frozen=True)
class DeliveryUpdate:
    """`message_created` / `message_updated`: where a message stands. Kimoby may deliver these
    out of order (a retry comes late): `updated_at` tells the newer one."""

    event_id: str
    message_id: str
    status: MessageStatus
    error: str | None
    updated_at: datetime | None


@dataclass(frozen=True)
class SubscriptionChange:
    """`customer_unsubscribed` / `customer_resubscribed`: no text may go to an unsubscribed customer."""

    event_id: str
    customer_id: str
    reference: str | None
    unsubscribed: bool
    updated_at: datetime | None


KimobyEvent = DeliveryUpdate | SubscriptionChange


class SeenEvents(Protocol):
    """Which events were handled already (the service's store keeps them, to outlive a restart).

    The receiver's one worker asks `handled` before an event and calls `remember` only once the
    event had its effect: an event whose handling failed is not marked, so a later delivery of
    it still counts.
    """

    async def handled(self, event_id: str) -> bool: ...

    async def remember(self, event_id: str) -> None: ...


class MemorySeenEvents:
    """`SeenEvents` in memory, the latest `limit` ids (tests, and a service without a store)."""

    def __init__(self, limit: int = 10_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._limit = limit

    async def handled(self, event_id: str) -> bool:
        return event_id in self._ids

    async def remember(self, event_id: str) -> None:
        self._ids[event_id] = None
        if len(self._ids) > self._limit:
            self._ids.popitem(last=False)


class WebhookReceiver:
    """Takes Kimoby's webhooks signed with `key` (`IVR_KIMOBY_WEBHOOK_KEY`) for `url` (the URL
    as registered with Kimoby, `IVR_KIMOBY_WEBHOOK_URL`) and hands each new event to `on_event`.

    `handle` answers at once; `join` waits until every accepted event is handled; `aclose`
    handles what was accepted (within `drain_timeout`) and stops.
    """

    def __init__(
        self, key: str, url: str, on_event: Callable[[KimobyEvent], Awaitable[None]], *,
        seen: SeenEvents | None = None, queue_size: int = 256,
    ) -> None:
        if not key:
            raise SettingsError("IVR_KIMOBY_WEBHOOK_KEY is empty: anyone could sign a webhook")
        self._key, self._url = key, url
        self._on_event = on_event
        self._seen: SeenEvents = seen if seen is not None else MemorySeenEvents()
        self._queue: asyncio.Queue[KimobyEvent] = asyncio.Queue(queue_size)
        self._worker: asyncio.Task[None] | None = None
        self._closed = False
        self._unknown: set[str] = set()
        self._refused = ThrottledWarning(log, "kimoby.webhook_refused", every=10.0)

    async def handle(self, headers: Mapping[str, str], body: bytes) -> tuple[int, str]:
        """The status and text to answer a webhook request with `headers` and raw `body`."""
        if not verify(self._key, self._url, body, _header(headers, SIGNATURE_HEADER)):
            self._refused.note(reason="signature missing or wrong")
            return 401, "signature missing or wrong"
        if len(body) > MAX_WEBHOOK_BYTES:
            self._refused.note(reason="body too large", bytes=len(body))
            return 400, "body over 1 MB"
        try:
            raw = json.loads(body)
        except (ValueError, RecursionError):
            return 400, "body is not JSON"
        try:
            envelope = WebhookEnvelope.model_validate(raw)
        except ValidationError:
            return 400, "body is not a Kimoby webhook event"
        name = envelope.event_name
        if name not in _MESSAGE_EVENTS | _CUSTOMER_EVENTS:
            if name not in self._unknown and len(self._unknown) < _UNKNOWN_NAMES_LOGGED:
                self._unknown.add(name)
                log.info("kimoby.webhook_ignored", event_name=name)
            return 200, "ignored"
        try:
            event = _event(envelope)
        except ValidationError:
            return 400, "body is not a Kimoby webhook event"
        if self._closed:
            return 503, "stopping, deliver again later"
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            log.warning("kimoby.webhook_busy", event_name=name, queued=self._queue.qsize())
            return 503, "busy, deliver again later"
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._work(), name="kimoby-webhooks")
        return 200, "ok"

    async def join(self) -> None:
        """Until every event accepted so far is handled."""
        await self._queue.join()

    async def aclose(self, drain_timeout: float = 5.0) -> None:
        self._closed = True
        try:
            async with asyncio.timeout(drain_timeout):
                await self._queue.join()
        except TimeoutError:
            log.warning("kimoby.webhook_events_left", count=self._queue.qsize())
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    async def _work(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                await self._handle_one(event)
            finally:
                self._queue.task_done()

    async def _handle_one(self, event: KimobyEvent) -> None:
        kind = type(event).__name__
        try:
            if await self._seen.handled(event.event_id):
                log.info("kimoby.webhook_duplicate", kind=kind, event_id=event.event_id)
                return
            await self._on_event(event)
            await self._seen.remember(event.event_id)
        except Exception as exc:  # one event's failure must not stop the ones after it
            log.error("kimoby.webhook_failed", kind=kind, event_id=event.event_id, error=type(exc).__name__,
                      exc_info=True)
            return
        if isinstance(event, DeliveryUpdate):
            log.info("kimoby.delivery_status", message_id=event.message_id, status=event.status.value)
        else:
            log.info("kimoby.subscription", customer_id=event.customer_id, unsubscribed=event.unsubscribed)


def _event(envelope: WebhookEnvelope) -> KimobyEvent:
    if envelope.event_name in _MESSAGE_EVENTS:
        message = Message.model_validate(envelope.data)
        return DeliveryUpdate(envelope.event_id, message.id, message.status, message.error, message.updated_at)
    customer = Customer.model_validate(envelope.data)
    return SubscriptionChange(envelope.event_id, customer.id, customer.reference,
                              envelope.event_name == "customer_unsubscribed", customer.updated_at)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)
