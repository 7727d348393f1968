"""The sandbox's webhook deliveries, as Kimoby's guide has them: a JSON POST signed with the
webhook's key in `X-Kimoby-Signature`, a 200 accepts it, 410 deletes the webhook, anything else
(or no answer in time) is tried again on the retry schedule. Every attempt of one event sends
the same bytes, so the receiver sees the same event again.

The signature goes without the newline Ruby's `Base64.encode64` ends with: an HTTP header value
cannot hold one (h11 refuses it), and receivers drop trailing whitespace from header values.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from ivr.backends.kimoby._signature import SIGNATURE_HEADER, sign
from ivr.backends.kimoby.sandbox._knobs import KimobyKnobs
from ivr.http_answers import NoAnswer, exchange
from ivr.logging import get_logger

__all__ = ["Delivery", "WebhookSender", "WebhookTarget"]

log = get_logger("ivr.kimoby.sandbox")


@dataclass(frozen=True)
class WebhookTarget:
    webhook_id: str
    url: str
    key: str


@dataclass(frozen=True)
class Delivery:
    """One attempt: `status` is the receiver's answer, None when there was none."""

    webhook_id: str
    event_name: str
    attempt: int
    status: int | None


class WebhookSender:
    """Delivers events in tasks of its own until `aclose`. `gone(webhook_id)` is called on a 410;
    `registered(webhook_id)` says whether a webhook still exists (a deleted one gets no retries)."""

    def __init__(
        self, knobs: Callable[[], KimobyKnobs], registered: Callable[[str], bool], gone: Callable[[str], None],
    ) -> None:
        self._knobs, self._registered, self._gone = knobs, registered, gone
        self._http = httpx.AsyncClient(headers={"User-Agent": "kimoby-sandbox", "Accept-Encoding": "identity"})
        self._tasks: set[asyncio.Task[None]] = set()
        self.deliveries: list[Delivery] = []

    def send(self, target: WebhookTarget, event_name: str, body: bytes) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(target, event_name, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def idle(self) -> None:
        """Until no delivery is under way (its retries included)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._http.aclose()

    async def _deliver(self, target: WebhookTarget, event_name: str, body: bytes) -> None:
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(target.key, target.url, body)}
        for attempt, wait in enumerate(self._knobs().retry_schedule, 1):
            await asyncio.sleep(wait)
            if not self._registered(target.webhook_id):
                return
            status = await self._post(target, headers, body)
            self.deliveries.append(Delivery(target.webhook_id, event_name, attempt, status))
            if status == 200:
                return
            if status == 410:
                self._gone(target.webhook_id)
                return
        log.warning("kimoby_sandbox.delivery_abandoned", webhook_id=target.webhook_id, event_name=event_name)

    async def _post(self, target: WebhookTarget, headers: dict[str, str], body: bytes) -> int | None:
        request = self._http.build_request("POST", target.url, headers=headers, content=body)
        try:
            response = await exchange(self._http, request, timeout=self._knobs().delivery_timeout, log=log,
                                      event="kimoby_sandbox.delivery", name=target.webhook_id)
        except NoAnswer:
            return None
        return response.status_code
