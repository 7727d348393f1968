"""`POST /webhooks/kimoby`: Kimoby's signed webhooks, handed to the `WebhookReceiver`.

The body is read within a bound before anything else (a larger one is refused, 413, unread);
the receiver checks the signature, then answers at once and handles the event after.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from ivr.backends.kimoby import MAX_WEBHOOK_BYTES, WebhookReceiver
from ivr.embedded_http import read_capped

__all__ = ["WEBHOOK_PATH", "kimoby_routes"]

WEBHOOK_PATH = "/webhooks/kimoby"
_READ_LIMIT = 2 * MAX_WEBHOOK_BYTES
"""Bytes read at most: enough to see that a signed body is over the receiver's 1 MB (400), no
more."""


def kimoby_routes(receiver: WebhookReceiver) -> list[BaseRoute]:
    async def webhook(request: Request) -> Response:
        body = await read_capped(request, _READ_LIMIT)
        if body is None:
            return PlainTextResponse("body too large", status_code=413)
        status, text = await receiver.handle(request.headers, body)
        return PlainTextResponse(text, status_code=status)

    return [Route(WEBHOOK_PATH, webhook, methods=["POST"])]
