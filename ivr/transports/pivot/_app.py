"""`PivotApp`: the HTTP routes `/kazoo/pivot/{route}` Kazoo's pivot requests come to.

Only Kazoo gets an answer: a peer outside `allow` (when given) gets 403, a request without the
secret (`?secret=`, compared in constant time) 401, and neither starts a flow. With neither a
secret nor an allow list configured every request gets 401: an open pivot URL would let anyone
run calls. The query string holds the secret, so nothing here logs it, nor the URL. Requests are
bounded: `max_body` bytes of POST body, `Call-ID` and other values by length.

Kazoo requests by GET (its parameters in the query, after ours) or POST (a form, or JSON with
``req_body_format: json``); see `_kazoo` for the parameters and `PivotCalls` for what they do.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from ivr.embedded_http import read_capped
from ivr.logging import ThrottledWarning, bind_call, get_logger
from ivr.netallow import Network, allowed
from ivr.transports.pivot import _kazoo as kazoo
from ivr.transports.pivot._call import ANSWER_WITHIN, HANGUP_MARGIN, PLAY_ALLOWANCE, PivotBusyError
from ivr.transports.pivot._calls import TURN, PivotCallHandler, PivotCalls
from ivr.tts import TtsCache

__all__ = ["MAX_BODY", "PivotApp"]

MAX_BODY = 64 * 1024
"""Bytes of POST body at most: Kazoo's form is a few hundred bytes."""

_ROUTE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_CALL_ID = re.compile(r"[\x21-\x7e]{1,256}")
_MAX_PARAMS = 256
_MAX_VALUE = 512
_log = get_logger("ivr.pivot")
_unauthorized = ThrottledWarning(_log, "pivot.unauthorized", every=10.0)


class PivotApp:
    """The pivot endpoint over `PivotCalls`; mount `routes` on the service's HTTP app.

    `handler(call)` runs the flow of each new call (the service's `_handle`, which refuses a call
    past `max_calls`; see `PivotCalls`). `public_url` is the service's base URL as Kazoo reaches it
    (sounds and pivots back are under it). A request Kazoo drops before its answer ends its call:
    Kazoo only does so when the call is over.
    """

    def __init__(
        self, handler: PivotCallHandler, *, public_url: str | Callable[[], str], secret: str = "",
        allow: Sequence[Network] | None = None, tts: TtsCache | None = None, max_calls: int = 100,
        transfer_callflow: str | None = None, answer_within: float = ANSWER_WITHIN,
        hangup_margin: float = HANGUP_MARGIN, play_allowance: float = PLAY_ALLOWANCE, max_body: int = MAX_BODY,
    ) -> None:
        self._secret = secret.encode()
        self._allow = tuple(allow) if allow is not None else None
        self._max_body = max_body
        self.calls = PivotCalls(
            handler, public_url=public_url, secret=secret, tts=tts, max_calls=max_calls,
            transfer_callflow=transfer_callflow, answer_within=answer_within, hangup_margin=hangup_margin,
            play_allowance=play_allowance,
        )
        self.routes: list[BaseRoute] = [Route("/kazoo/pivot/{route}", self._endpoint, methods=["GET", "POST"])]

    @property
    def active(self) -> int:
        return self.calls.active

    async def drain(self, grace: float) -> None:
        await self.calls.drain(grace)

    async def wait_call(self, call_id: str, timeout: float) -> None:
        await self.calls.wait_call(call_id, timeout)

    # -- the endpoint ----------------------------------------------------------------------

    async def _endpoint(self, request: Request) -> Response:
        query = _query(request)
        refused = self._refuse(request, query)
        if refused is not None:
            return refused
        route = request.path_params["route"]
        if not _ROUTE.fullmatch(route):
            return PlainTextResponse("Not Found", status_code=404)
        if query is None:
            return PlainTextResponse("Bad Request", status_code=400)
        params: dict[str, Any] = {k: v for k, v in query.items() if k not in ("secret", TURN)}
        if request.method == "POST":
            body = await read_capped(request, self._max_body)
            if body is None:
                return PlainTextResponse("Payload Too Large", status_code=413)
            form = _parse_body(body, request.headers.get("content-type", ""))
            if form is None:
                return PlainTextResponse("Bad Request", status_code=400)
            params.update(form)
        call_id = params.get("Call-ID")
        if not isinstance(call_id, str) or not _CALL_ID.fullmatch(call_id):
            return PlainTextResponse("Bad Request: Call-ID", status_code=400)
        params = {k: v[:_MAX_VALUE] if isinstance(v, str) and not k.startswith("Digits") else v
                  for k, v in params.items()}
        variables = {k: v for k, v in query.items()
                     if k not in ("secret", TURN) and kazoo.base_name(k) not in kazoo.KAZOO_PARAMETERS}
        resumed = TURN in query or kazoo.digits_of(params) is not None
        with bind_call(call_id, route=route):
            answer = asyncio.ensure_future(self.calls.request(route, params, variables, resumed=resumed))
            left = asyncio.ensure_future(_disconnected(request))
            try:
                await asyncio.wait({answer, left}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                left.cancel()
                dropped = not answer.done()
                if dropped:
                    answer.cancel()
            if dropped:
                # Kazoo dropped the request it waits on: the call is over (a hang-up mid-request).
                await asyncio.wait({answer})
                self.calls.abandoned(call_id)
                return PlainTextResponse("Client Closed Request", status_code=499)
            try:
                modules = answer.result()
            except PivotBusyError:
                _log.warning("pivot.concurrent_request")
                return PlainTextResponse("Conflict", status_code=409)
        return JSONResponse(kazoo.callflow(modules))

    def _refuse(self, request: Request, query: dict[str, str] | None) -> Response | None:
        client = request.client.host if request.client else None
        if self._allow is not None and not allowed(self._allow, client):
            _unauthorized.note(reason="address")
            return PlainTextResponse("Forbidden", status_code=403)
        if not self._secret:
            if self._allow is None:
                _unauthorized.note(reason="no secret configured")
                return PlainTextResponse("Unauthorized", status_code=401)
            return None
        given = (query or {}).get("secret", "")
        if not hmac.compare_digest(given.encode(), self._secret):
            _unauthorized.note(reason="secret")
            return PlainTextResponse("Unauthorized", status_code=401)
        return None


async def _disconnected(request: Request) -> None:
    """Until the peer closes the connection (the body, if any, read already)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _query(request: Request) -> dict[str, str] | None:
    """The query's parameters (the last of a repeated name wins); None past `_MAX_PARAMS` of them."""
    try:
        return dict(parse_qsl(request.url.query, keep_blank_values=True, max_num_fields=_MAX_PARAMS))
    except ValueError:
        return None


def _parse_body(body: bytes, content_type: str) -> dict[str, Any] | None:
    """A form (Kazoo's default) or JSON (`req_body_format: json`); None when it is neither."""
    try:
        text = body.decode()
        if content_type.split(";")[0].strip().lower() == "application/json":
            data = json.loads(text) if text else {}
            return {str(k): v for k, v in data.items()} if isinstance(data, dict) else None
        return dict(parse_qsl(text, keep_blank_values=True, max_num_fields=_MAX_PARAMS))
    except ValueError:
        return None
