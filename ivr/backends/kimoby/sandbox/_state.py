"""What the Kimoby sandbox keeps and answers, apart from HTTP: its customers (one for each of the
KimVoice sandbox's test keys), messages and the statuses they go through, webhooks, and the
fault plumbing.

A message goes `queued`, `sent`, then `delivered`, one step every `step_seconds`, each step a
webhook event (`message_created`, then `message_updated`). The customer's cell phone decides
otherwise as in the other sandboxes: a number ending `5550102` ends `undelivered`, one ending
`5550104` goes from `queued` to `failed`. How the real Kimoby refuses a customer without a cell
phone or an unsubscribed one is not in its guide: the sandbox answers 400 with a message.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ivr.backends.kimoby._models import MAX_BODY_CHARS
from ivr.backends.kimoby.sandbox._knobs import KimobyKnobs
from ivr.backends.kimoby.sandbox._sender import WebhookSender, WebhookTarget
from ivr.sandbox_kit import Refused, SandboxFaults

__all__ = [
    "FAILED_NUMBER",
    "SANDBOX_API_KEY",
    "SANDBOX_API_SECRET",
    "SEED_CUSTOMERS",
    "UNDELIVERED_NUMBER",
    "UNKNOWN_REFERENCE",
    "KimobySandbox",
    "Refused",
    "SeedCustomer",
    "customer_id_for",
    "page_of",
    "seed_customer_lines",
]

SANDBOX_API_KEY = "keybox-sandbox"
SANDBOX_API_SECRET = "sandbox-api-secret"
UNDELIVERED_NUMBER = "5550102"
FAILED_NUMBER = "5550104"
"""Cell phones (ending so) whose texts end `undelivered`, or `failed`; every other one's are delivered."""
UNKNOWN_REFERENCE = "99999"
"""The KimVoice sandbox's unknown key: no customer has it."""
MAX_PER_PAGE = 50


@dataclass(frozen=True)
class SeedCustomer:
    reference: str
    name: str
    cell_phone_number: str | None
    is_unsubscribed: bool
    purpose: str


SEED_CUSTOMERS: tuple[SeedCustomer, ...] = (
    # The references are the KimVoice sandbox's key numbers (its _data.SEED_KEYS; a test checks).
    SeedCustomer("123456", "Jane Agent", "+15555550123", False, "texts are delivered"),
    SeedCustomer("234567", "Omar Broker", "+15555550145", False, "texts are delivered"),
    SeedCustomer("345678", "Sam Seller", "+1555" + UNDELIVERED_NUMBER, False, "texts end undelivered"),
    SeedCustomer("456789", "Pat Pastdue", None, False, "no cell phone number"),
    SeedCustomer("567890", "Una Assigned", "+15555550111", True, "unsubscribed (texted STOP)"),
    SeedCustomer("678901", "Sue Spended", "+1555" + FAILED_NUMBER, False, "texts end failed"),
)


def customer_id_for(reference: str) -> str:
    """The sandbox's id of the customer of `reference`, shaped like Kimoby's (`cu` and 32 hex)."""
    return "cu" + hashlib.md5(reference.encode(), usedforsecurity=False).hexdigest()


def seed_customer_lines() -> list[str]:
    """What `ivr kimoby-sandbox` prints at start: every reference QA can text."""
    lines = [f"reference {c.reference}  {c.purpose}" for c in SEED_CUSTOMERS]
    lines.append(f"reference {UNKNOWN_REFERENCE}  no such customer")
    return lines



class KimobySandbox(SandboxFaults[KimobyKnobs]):
    """The documented subset of Kimoby's API, in memory; `create_app` serves it.

    `messages` holds every message sent (a test asserts "exactly one text" on it), and
    `sender.deliveries` every webhook delivery attempt.
    """

    def __init__(
        self, knobs: KimobyKnobs | None = None, *, api_key: str = SANDBOX_API_KEY,
        api_secret: str = SANDBOX_API_SECRET, clock: Callable[[], float] = time.time,
    ) -> None:
        self.knobs = (knobs or KimobyKnobs()).model_copy()
        self.clock = clock
        self._api_key, self._api_secret = api_key, api_secret
        self.customers: dict[str, dict[str, Any]] = {}
        for seed in SEED_CUSTOMERS:
            self._add_customer(seed)
        self.messages: dict[int, dict[str, Any]] = {}
        self.webhooks: dict[str, dict[str, Any]] = {}
        self._message_ids = itertools.count(345634563)
        self.requests: Counter[str] = Counter()
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.stopping = asyncio.Event()
        self._timers: set[asyncio.TimerHandle] = set()
        self.sender = WebhookSender(lambda: self.knobs, lambda wid: wid in self.webhooks, self._webhook_gone)

    async def aclose(self) -> None:
        """No timer fires and no delivery goes out after the sandbox stops."""
        self.stopping.set()
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        await self.sender.aclose()

    def check_credentials(self, api_key: str, api_secret: str) -> bool:
        return hmac.compare_digest(api_key.encode(), self._api_key.encode()) & hmac.compare_digest(
            api_secret.encode(), self._api_secret.encode())

    # -- customers ----------------------------------------------------------------------------

    def find_customer(self, query: dict[str, str]) -> dict[str, Any]:
        for field in ("id", "reference", "cell_phone_number"):
            if field in query:
                found = next((c for c in self.customers.values() if c[field] == query[field]), None)
                if found is None:
                    raise Refused(404, "Customer not found")
                return dict(found)
        raise Refused(400, "id, reference or cell_phone_number is required")

    def customer(self, customer_id: str) -> dict[str, Any]:
        found = self.customers.get(customer_id)
        if found is None:
            raise Refused(404, "Customer not found")
        return dict(found)

    def set_unsubscribed(self, reference: str, unsubscribed: bool) -> dict[str, Any]:
        """As if the customer texted STOP (or START): the state changes and a webhook event goes."""
        customer = self.customers.get(customer_id_for(reference))
        if customer is None:
            raise Refused(404, "Customer not found")
        customer["is_unsubscribed"] = unsubscribed
        customer["updated_at"] = self._now()
        self._emit("customer_unsubscribed" if unsubscribed else "customer_resubscribed", dict(customer))
        return dict(customer)

    # -- messages -----------------------------------------------------------------------------

    def send_message(self, data: dict[str, Any]) -> dict[str, Any]:
        wanted, body = data.get("customer"), data.get("body")
        if not isinstance(wanted, dict) or not wanted:
            raise Refused(400, "customer is required")
        if not isinstance(body, str) or not body.strip():
            raise Refused(400, "body is required")
        if len(body) > MAX_BODY_CHARS:
            raise Refused(400, f"body is too long (maximum is {MAX_BODY_CHARS} characters)")
        customer = self.find_customer({k: str(v) for k, v in wanted.items()
                                       if k in ("id", "reference", "cell_phone_number")})
        if not customer["cell_phone_number"]:
            raise Refused(400, "Customer has no cell phone number")
        if customer["is_unsubscribed"]:
            raise Refused(400, "Customer is unsubscribed")
        now = self._now()
        message = {"id": next(self._message_ids), "customer_id": customer["id"], "conversation_id": None,
                   "user_sub_user_id": None, "body": body, "element_type": "sent_message", "direction": "outgoing",
                   "status": "queued", "error": None, "documents": [], "created_at": now, "updated_at": now}
        self.messages[message["id"]] = message
        self._emit("message_created", dict(message))
        phone = customer["cell_phone_number"]
        steps: list[tuple[str, str | None]] = [("sent", None), ("delivered", None)]
        if phone.endswith(FAILED_NUMBER):
            steps = [("failed", "Invalid destination number")]
        elif phone.endswith(UNDELIVERED_NUMBER):
            steps = [("sent", None), ("undelivered", "Unreachable destination handset")]
        self._schedule(message, steps)
        return dict(message)

    def message(self, message_id: int) -> dict[str, Any]:
        found = self.messages.get(message_id)
        if found is None:
            raise Refused(404, "Message not found")
        return dict(found)

    def _schedule(self, message: dict[str, Any], steps: list[tuple[str, str | None]]) -> None:
        if not steps or self.stopping.is_set():
            return
        loop = asyncio.get_running_loop()
        timer: asyncio.TimerHandle | None = None

        def step() -> None:
            if timer is not None:
                self._timers.discard(timer)
            (status, error), rest = steps[0], steps[1:]
            message.update(status=status, error=error, updated_at=self._now())
            self._emit("message_updated", dict(message))
            self._schedule(message, rest)

        timer = loop.call_later(self.knobs.step_seconds, step)
        self._timers.add(timer)

    # -- webhooks -----------------------------------------------------------------------------

    def create_webhook(self, data: dict[str, Any]) -> dict[str, Any]:
        url, events = data.get("url"), data.get("events")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")) or len(url) > 2048:
            raise Refused(400, "url must be an http(s) URL")
        if events is not None and (not isinstance(events, list) or not all(isinstance(e, str) for e in events)):
            raise Refused(400, "events must be a list of event names")
        now = self._now()
        webhook: dict[str, Any] = {"id": "WH" + secrets.token_hex(16), "url": url, "events": events or [],
                   "authentication_key": secrets.token_urlsafe(30), "created_at": now, "updated_at": now}
        self.webhooks[webhook["id"]] = webhook
        return dict(webhook)

    def list_webhooks(self) -> list[dict[str, Any]]:
        """Without their keys: Kimoby shows a key only in the answer to the creation."""
        return [{k: v for k, v in w.items() if k != "authentication_key"} for w in self.webhooks.values()]

    def delete_webhook(self, webhook_id: str) -> None:
        if self.webhooks.pop(webhook_id, None) is None:
            raise Refused(404, "Webhook not found")

    def _webhook_gone(self, webhook_id: str) -> None:
        self.webhooks.pop(webhook_id, None)

    def _emit(self, event_name: str, data: dict[str, Any]) -> None:
        if self.stopping.is_set():
            return
        body = json.dumps({"data": data, "event_name": event_name}).encode()
        for webhook in self.webhooks.values():
            if not webhook["events"] or event_name in webhook["events"]:
                target = WebhookTarget(webhook["id"], webhook["url"], webhook["authentication_key"])
                self.sender.send(target, event_name, body)

    # -- helpers ------------------------------------------------------------------------------

    def _add_customer(self, seed: SeedCustomer) -> None:
        now = self._now()
        customer_id = customer_id_for(seed.reference)
        self.customers[customer_id] = {
            "id": customer_id, "reference": seed.reference, "name": seed.name,
            "cell_phone_number": seed.cell_phone_number, "email": "", "is_unsubscribed": seed.is_unsubscribed,
            "phones": {}, "custom_attributes": {}, "created_at": now, "updated_at": now}

    def _now(self) -> str:
        return datetime.fromtimestamp(self.clock(), UTC).isoformat(timespec="seconds")


def page_of(items: list[dict[str, Any]], query: dict[str, str], key: str) -> dict[str, Any]:
    """`items` paginated as Kimoby's lists are (`page`, `per_page` up to 50, default 25)."""
    try:
        page, per_page = int(query.get("page", "1")), int(query.get("per_page", "25"))
    except ValueError:
        raise Refused(400, "page and per_page must be integers") from None
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise Refused(400, f"page must be greater than 0 and per_page between 1 and {MAX_PER_PAGE}")
    pages = max(1, -(-len(items) // per_page))
    return {key: items[(page - 1) * per_page: page * per_page],
            "pagination": {"page": page, "pages": pages, "items": len(items), "per_page": per_page}}
