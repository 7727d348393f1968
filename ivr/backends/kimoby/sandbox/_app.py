"""The Kimoby sandbox over HTTP: Kimoby's paths under `/v1`, knobs, counters and the customer's
side (texting STOP or START) under `/sandbox/`.

Errors come as Kimoby's guide has them: `{"message": "..."}`. A 429 from `fail_next` carries
`Retry-After` (the `retry_after` knob).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from ivr.backends.kimoby.sandbox._state import KimobySandbox, Refused, page_of
from ivr.logging import get_logger
from ivr.sandbox_kit import knob_routes, refusing_when_down

log = get_logger("ivr.kimoby.sandbox")

_MAX_REQUEST_BYTES = 64 * 1024
"""The largest request body the sandbox reads: a message is at most 1,600 characters."""


class _Created:
    """A handler's answer with a status other than 200."""

    def __init__(self, body: Any, status: int) -> None:
        self.body, self.status = body, status


_Handler = Callable[[Request], Awaitable[Any]]


def create_app(sandbox: KimobySandbox, *, log_requests: bool = False) -> ASGIApp:
    """The ASGI app serving `sandbox`."""

    def api(route: str, handler: _Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            response = await _answer(sandbox, request, handler)
            sandbox.record(route, response.status_code)
            if log_requests:
                log.info("kimoby_sandbox.request", route=route, status=response.status_code)
            return response
        return endpoint

    async def customers(request: Request) -> Any:
        query = dict(request.query_params)
        if {"id", "reference", "cell_phone_number"} & query.keys():
            return sandbox.find_customer(query)
        return page_of(list(sandbox.customers.values()), query, "customers")

    async def customer(request: Request) -> Any:
        return sandbox.customer(request.path_params["id"])

    async def messages(request: Request) -> Any:
        if request.method == "POST":
            return _Created(sandbox.send_message(await _body(request)), 201)
        return page_of(list(sandbox.messages.values()), dict(request.query_params), "messages")

    async def message(request: Request) -> Any:
        return sandbox.message(request.path_params["id"])

    async def webhooks(request: Request) -> Any:
        if request.method == "POST":
            return _Created(sandbox.create_webhook(await _body(request)), 201)
        return sandbox.list_webhooks()

    async def webhook(request: Request) -> Any:
        sandbox.delete_webhook(request.path_params["id"])
        return _Created(None, 204)

    async def unsubscribe(request: Request) -> Response:
        return _answer_refusal(lambda: sandbox.set_unsubscribed(request.path_params["reference"], True))

    async def resubscribe(request: Request) -> Response:
        return _answer_refusal(lambda: sandbox.set_unsubscribed(request.path_params["reference"], False))

    async def counters(_: Request) -> Response:
        return JSONResponse({"requests": dict(sandbox.requests), "messages": len(sandbox.messages),
                             "deliveries": [asdict(d) for d in sandbox.sender.deliveries]})

    inner = Starlette(routes=[
        Route("/v1/customers", api("GET /customers", customers), methods=["GET"]),
        Route("/v1/customers/{id}", api("GET /customers/{id}", customer), methods=["GET"]),
        Route("/v1/messages", api("POST /messages", messages), methods=["POST"]),
        Route("/v1/messages", api("GET /messages", messages), methods=["GET"]),
        Route("/v1/messages/{id:int}", api("GET /messages/{id}", message), methods=["GET"]),
        Route("/v1/webhooks", api("POST /webhooks", webhooks), methods=["POST"]),
        Route("/v1/webhooks", api("GET /webhooks", webhooks), methods=["GET"]),
        Route("/v1/webhooks/{id}", api("DELETE /webhooks/{id}", webhook), methods=["DELETE"]),
        *knob_routes(sandbox),
        Route("/sandbox/counters", counters, methods=["GET"]),
        Route("/sandbox/customers/{reference}/unsubscribe", unsubscribe, methods=["POST"]),
        Route("/sandbox/customers/{reference}/resubscribe", resubscribe, methods=["POST"]),
    ])

    return refusing_when_down(inner, lambda: sandbox.knobs.down, lambda: sandbox.record("(down)", 0),
                              _error(503, "the sandbox is down"))


async def _answer(sandbox: KimobySandbox, request: Request, handler: _Handler) -> Response:
    if not await sandbox.delay():
        return _error(503, "the sandbox is stopping")
    fault = sandbox.take_fault()
    if fault is not None:
        headers = {"Retry-After": str(sandbox.knobs.retry_after)} if fault == 429 else None
        return _error(fault, "a fault the sandbox was told to answer", headers)
    if not _authorized(sandbox, request):
        return _error(401, "Unauthorized", {"WWW-Authenticate": 'Basic realm="kimoby"'})
    try:
        result = await handler(request)
    except Refused as refused:
        return _error(refused.status, refused.message)
    if isinstance(result, _Created):
        if result.body is None:
            return Response(status_code=result.status)
        return JSONResponse(result.body, status_code=result.status)
    return JSONResponse(result)


def _answer_refusal(change: Callable[[], dict[str, Any]]) -> Response:
    try:
        return JSONResponse(change())
    except Refused as refused:
        return _error(refused.status, refused.message)


def _authorized(sandbox: KimobySandbox, request: Request) -> bool:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return False
    try:
        api_key, _, api_secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return sandbox.check_credentials(api_key, api_secret)


async def _body(request: Request) -> dict[str, Any]:
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > _MAX_REQUEST_BYTES:
            raise Refused(413, "the body is too large")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise Refused(400, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise Refused(400, "the body is not a JSON object")
    return body


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"message": message}, status_code=status, headers=headers)
