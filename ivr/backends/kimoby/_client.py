"""Kimoby's REST API, the part the line uses: one pooled httpx client, Basic auth, one deadline
per call, retries of 429 and 5xx that honour `Retry-After`.

Kimoby publishes no source; its API guide is the reference. Where the guide is silent or
ambivalent, this client takes the safe reading:

* `GET /customers?reference=R` answers one customer (the guide's example); a list page
  (`{"customers": [...], "pagination": ...}`) or a bare array is read too. Either way only a customer whose
  `reference` is exactly R counts (references are case sensitive): a code never goes to anyone else.
* The guide says what `POST /messages` wants, not how it refuses an unsubscribed customer or one
  without a cell phone (its errors are free text). So `send_code` looks the customer up first:
  one more GET within the same deadline, and no text to an unsubscribed customer even when
  Kimoby would send it, or when only our own records (the webhooks') know of the unsubscribe.
* A `POST /messages` that went out and got no answer (a timeout, a broken connection) is not
  sent again: the text may have gone, and a second one would be a second copy of the code. A
  429 or a 5xx answer is retried: Kimoby answered, and says it did not act (a 5xx after acting
  would be Kimoby's defect, a duplicate text at worst).
* `GET /webhooks` answers a bare array in the guide; a list page is read too.
* A list is asked 50 a page (`per_page`, the guide's most) from its first request on: Kimoby's
  default is 25, and a first page of 25 followed by pages of 50 would skip items 26 to 50.

Nothing the client logs or raises holds a message body (it holds the code), a phone number, the
API secret or a webhook's key.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import json
import random
import re
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from datetime import UTC
from typing import Any

import httpx

from ivr.backends.kimoby._models import MAX_BODY_CHARS, Customer, Message, Page, Webhook, parse
from ivr.errors import (
    SettingsError,
    SmsCredentialsError,
    SmsError,
    SmsInputError,
    SmsRecipientError,
    SmsRejectedError,
    SmsUnavailableError,
)
from ivr.http_answers import NoAnswer, exchange, peer_client
from ivr.logging import get_logger, mask_code

__all__ = ["MAX_PER_PAGE", "KimobyClient", "Unsubscribed", "retry_after"]

log = get_logger("ivr.kimoby")

MAX_PER_PAGE = 50
"""The guide's largest `per_page`."""
_PAGE_SIZE = {"per_page": str(MAX_PER_PAGE)}
"""Asked of every list request, the first too: Kimoby's default is 25 a page."""
_CREDENTIALS = "IVR_KIMOBY_API_KEY / IVR_KIMOBY_API_SECRET"
_PATH_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_DIGITS = re.compile(r"\d{4,}")

Unsubscribed = Collection[str] | Callable[[Customer], Awaitable[bool]]
"""Our own unsubscribe records: customer ids and references, or an async check of a customer."""


class KimobyClient:
    """Kimoby over HTTP. One per process: it pools connections.

    `url` is the API root (`https://api.kimoby.com/v1`). Every method finishes within its
    `timeout` (else the client's), retries included, or raises `SmsUnavailableError`; a pause
    that `Retry-After` asks for and the deadline cannot hold is not waited: the call gives up at
    once. Errors are the `SmsError` family: `SmsInputError` before anything is sent,
    `SmsRejectedError` for a 4xx (`SmsCredentialsError`, also a `SettingsError`, for 401/403),
    `SmsRecipientError` when no text can go, `SmsUnavailableError` for the rest.
    """

    def __init__(
        self, url: str, api_key: str, api_secret: str, *, timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, max_retries: int = 2, backoff: float = 0.2,
        max_pages: int = 20, clock: Callable[[], float] = time.monotonic, now: Callable[[], float] = time.time,
    ) -> None:
        if not api_key or not api_secret:
            raise SettingsError(f"Kimoby needs {_CREDENTIALS}")
        if not _is_http_url(url):
            raise SettingsError("IVR_KIMOBY_URL is not an http(s) URL")
        self._root = url.rstrip("/")
        credentials = base64.b64encode(f"{api_key}:{api_secret}".encode()).decode("ascii")
        self._headers = {"Authorization": f"Basic {credentials}"}
        self._timeout = timeout
        self._sleep = sleep
        self._max_retries = max_retries
        self._backoff = backoff
        self._max_pages = max_pages
        self._clock, self._now = clock, now
        self._http = peer_client(timeout, transport=transport)

    async def __aenter__(self) -> KimobyClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- what the call flow uses ---------------------------------------------------------

    async def send_code(
        self, reference: str, text: str, *, unsubscribed: Unsubscribed | None = None, timeout: float | None = None,
    ) -> Message:
        """Text `text` (it holds the code) to the customer of `reference`, or `SmsRecipientError`
        when there is none, it has no cell phone, or it is unsubscribed (in Kimoby, or in our
        own records `unsubscribed`). One deadline covers the look-up and the send."""
        _check_reference(reference)
        _check_body(text)
        deadline = self._deadline(timeout)
        customer = await self._find_customer(reference, deadline)
        reason = await _why_not(customer, unsubscribed)
        if reason is not None:
            log.info("kimoby.no_recipient", reference=reference, reason=reason)
            raise SmsRecipientError(f"no text message to the Kimoby customer of reference {reference!r}: {reason}")
        return await self._send_message(reference, text, deadline)

    # -- the rest of the API -------------------------------------------------------------

    async def find_customer(self, reference: str, *, timeout: float | None = None) -> Customer | None:
        """The customer whose `reference` is exactly `reference`, or None."""
        _check_reference(reference)
        return await self._find_customer(reference, self._deadline(timeout))

    async def send_message(self, reference: str, body: str, *, timeout: float | None = None) -> Message:
        """`POST /messages` to the customer of `reference`, without looking it up first."""
        _check_reference(reference)
        _check_body(body)
        return await self._send_message(reference, body, self._deadline(timeout))

    async def message(self, message_id: str, *, timeout: float | None = None) -> Message:
        _check_path_id(message_id, "message id")
        name = "GET /messages/{id}"
        response = await self._request(name, "GET", f"/messages/{message_id}", self._deadline(timeout))
        return parse(Message, _ok(name, response), "message")

    async def webhooks(self, *, timeout: float | None = None) -> list[Webhook]:
        """The webhooks registered with Kimoby (without their keys: Kimoby shows those once)."""
        name = "GET /webhooks"
        deadline = self._deadline(timeout)
        body = _ok(name, await self._request(name, "GET", "/webhooks", deadline, params=_PAGE_SIZE))
        if isinstance(body, list):
            items: list[Any] = body
        else:
            items = [item async for page in self._pages(name, "/webhooks", "webhooks", _PAGE_SIZE, deadline, body)
                     for item in page]
        return [parse(Webhook, item, "webhook") for item in items]

    async def create_webhook(
        self, url: str, events: list[str] | None = None, *, timeout: float | None = None,
    ) -> Webhook:
        """Register `url` (the guide: HTTPS) for `events` (None: every event, and no `events`
        field sent, which the guide does not know). The answer holds the webhook's key, which
        Kimoby never shows again: keep it (`IVR_KIMOBY_WEBHOOK_KEY`)."""
        if not _is_http_url(url) or len(url) > 2048:
            raise SmsInputError("a webhook URL is an http(s) URL of at most 2,048 characters")
        name = "POST /webhooks"
        payload: dict[str, Any] = {"url": url}
        if events is not None:
            payload["events"] = list(events)
        response = await self._request(name, "POST", "/webhooks", self._deadline(timeout), json=payload)
        webhook = parse(Webhook, _ok(name, response), "webhook")
        if not webhook.authentication_key:
            raise SmsUnavailableError(f"Kimoby created webhook {webhook.id} without its authentication_key")
        log.info("kimoby.webhook_created", webhook_id=webhook.id)
        return webhook

    async def delete_webhook(self, webhook_id: str, *, timeout: float | None = None) -> bool:
        """Delete a webhook; False when Kimoby does not know it (404)."""
        _check_path_id(webhook_id, "webhook id")
        name = "DELETE /webhooks/{id}"
        response = await self._request(name, "DELETE", f"/webhooks/{webhook_id}", self._deadline(timeout))
        if response.status_code == 404:
            return False
        if not 200 <= response.status_code < 300:
            raise _refused(name, response)
        log.info("kimoby.webhook_deleted", webhook_id=webhook_id)
        return True

    # -- the machinery -------------------------------------------------------------------

    def _deadline(self, timeout: float | None) -> float:
        return self._clock() + (self._timeout if timeout is None else timeout)

    async def _find_customer(self, reference: str, deadline: float) -> Customer | None:
        name = "GET /customers"
        params = {"reference": reference, **_PAGE_SIZE}
        response = await self._request(name, "GET", "/customers", deadline, params=params)
        if response.status_code == 404:
            return None
        body = _ok(name, response)
        if isinstance(body, list):
            body = {"customers": body}
        if isinstance(body, dict) and "customers" not in body:
            customer = parse(Customer, body, "customer")
            return customer if customer.reference == reference else None
        async for page in self._pages(name, "/customers", "customers", params, deadline, body):
            for item in page:
                customer = parse(Customer, item, "customer")
                if customer.reference == reference:
                    return customer
        return None

    async def _send_message(self, reference: str, body: str, deadline: float) -> Message:
        name = "POST /messages"
        payload = {"customer": {"reference": reference}, "body": body}
        response = await self._request(name, "POST", "/messages", deadline, resend_unanswered=False, json=payload)
        message = parse(Message, _ok(name, response), "message")
        log.info("kimoby.message_sent", message_id=message.id, status=message.status.value)
        return message

    async def _pages(
        self, name: str, path: str, key: str, params: dict[str, str], deadline: float, first: Any,
    ) -> AsyncIterator[list[Any]]:
        """The items of a list, page by page from the answer `first`, at most `max_pages` pages.

        `params` are those of the first request, `per_page` included: page n+1 is the one after
        page n only when both are of one size."""
        body, read = first, 1
        while True:
            page = parse(Page, {"items": body.get(key) if isinstance(body, dict) else None,
                                "pagination": body.get("pagination") if isinstance(body, dict) else None}, name)
            yield page.items
            if page.pagination is None or page.pagination.page >= page.pagination.pages:
                return
            if read >= self._max_pages:
                log.warning("kimoby.pages_left_off", call=name, pages=page.pagination.pages, read=read)
                return
            read += 1
            query = {**params, "page": str(page.pagination.page + 1)}
            body = _ok(name, await self._request(name, "GET", path, deadline, params=query))

    async def _request(
        self, name: str, verb: str, path: str, deadline: float, *, resend_unanswered: bool = True, **kwargs: Any,
    ) -> httpx.Response:
        """An answer that is neither a 429 nor a 5xx, after at most `max_retries` retries, all
        before `deadline`; else `SmsUnavailableError`."""
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise SmsUnavailableError(f"Kimoby {name}: the call's deadline passed")
            request = self._http.build_request(verb, self._root + path, headers=self._headers, **kwargs)
            try:
                response = await exchange(self._http, request, timeout=remaining, log=log, event="kimoby.request",
                                          name=name)
            except NoAnswer as exc:
                if (exc.reached and not resend_unanswered) or attempt > self._max_retries:
                    raise SmsUnavailableError(f"Kimoby {name}: {exc}") from None
                wait = None
            else:
                if response.status_code != 429 and response.status_code < 500:
                    return response
                if attempt > self._max_retries:
                    raise SmsUnavailableError(
                        f"Kimoby {name} answered HTTP {response.status_code}, {attempt} times") from None
                wait = retry_after(response.headers.get("retry-after"), self._now())
            remaining = deadline - self._clock()
            if wait is not None and wait >= remaining:
                raise SmsUnavailableError(f"Kimoby {name} asked to wait {wait:g} s, more than the call has left")
            pause = (wait or 0.0) + random.uniform(0.5, 1.0) * self._backoff * 2 ** (attempt - 1)
            await self._sleep(min(pause, max(remaining, 0.0)))


def retry_after(value: str | None, now: float) -> float | None:
    """The seconds a `Retry-After` header asks for (delay-seconds or an HTTP-date, RFC 9110
    §10.2.3), None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(min(int(value), 86_400))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


async def _why_not(customer: Customer | None, unsubscribed: Unsubscribed | None) -> str | None:
    if customer is None:
        return "no such customer"
    if not customer.has_cell_phone:
        return "no cell phone number"
    if customer.is_unsubscribed:
        return "unsubscribed"
    if unsubscribed is None:
        return None
    if callable(unsubscribed):
        return "unsubscribed (our records)" if await unsubscribed(customer) else None
    return "unsubscribed (our records)" if customer.id in unsubscribed or customer.reference in unsubscribed else None


def _is_http_url(url: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False


def _check_reference(reference: str) -> None:
    if not reference or len(reference) > 128 or not reference.isprintable() or reference != reference.strip():
        raise SmsInputError("a customer reference is 1 to 128 printable characters")


def _check_body(body: str) -> None:
    if not body.strip():
        raise SmsInputError("a text message needs a body")
    if len(body) > MAX_BODY_CHARS:
        raise SmsInputError(f"a text message body is at most {MAX_BODY_CHARS:,} characters, not {len(body):,}")


def _check_path_id(value: str, what: str) -> None:
    if not _PATH_ID.match(value):
        raise SmsInputError(f"a Kimoby {what} is 1 to 128 letters, digits, '-' or '_'")


def _ok(name: str, response: httpx.Response) -> Any:
    """The JSON of a 2xx answer, or the error its status means."""
    if not 200 <= response.status_code < 300:
        raise _refused(name, response)
    try:
        return json.loads(response.content)
    except (ValueError, RecursionError):
        raise SmsUnavailableError(f"Kimoby {name} sent a body that is not JSON") from None


def _refused(name: str, response: httpx.Response) -> SmsError:
    status = response.status_code
    message = _message_of(response)
    if status in (401, 403):
        return SmsCredentialsError(
            f"Kimoby refused the API key and secret (HTTP {status}): check {_CREDENTIALS}", status, message)
    text = f"Kimoby {name} answered HTTP {status}" + (f": {message}" if message else "")
    if 400 <= status < 500:
        return SmsRejectedError(text, status, message)
    return SmsUnavailableError(text)


def _message_of(response: httpx.Response) -> str:
    """Kimoby's `{"message": "..."}`, printable, one line, bounded, with digit runs masked (an
    error may quote a phone number or the text it refused)."""
    try:
        body = json.loads(response.content)
    except (ValueError, RecursionError):
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str):
        return ""
    cleaned = " ".join("".join(ch if ch.isprintable() else " " for ch in message).split())
    cleaned = _DIGITS.sub(lambda m: mask_code(m.group()), cleaned)
    return cleaned if len(cleaned) <= 160 else cleaned[:159] + "…"
