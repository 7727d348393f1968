"""The Kazoo sandbox over HTTP: crossbar's paths under `/v2`, knobs and counters under `/sandbox/`.

Answers come in crossbar's envelopes (`api_util.erl::create_default_resp_envelope`): success
`{"auth_token", "data", "request_id", "revision", "status": "success"}`, errors
`{"status": "error", "error": "<HTTP code>", "message", "data", ...}`. Creates answer 201,
quickcalls 202 (`pqc_cb_crud.erl`, `cb_quickcall.erl`).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from ivr.logging import get_logger
from ivr.outbound.platforms.kazoo.sandbox._state import KazooSandbox, Refused, system_error, validation_error
from ivr.sandbox_kit import knob_routes, refusing_when_down

log = get_logger("ivr.outbound.kazoo.sandbox")


class _Answer:
    """A handler's success: `data`, its status, and envelope keys besides."""

    def __init__(self, data: Any, status: int = 200, **envelope: Any) -> None:
        self.data, self.status, self.envelope = data, status, envelope


_Handler = Callable[[Request], Awaitable[_Answer]]


def create_app(sandbox: KazooSandbox, *, log_requests: bool = False) -> ASGIApp:
    """The ASGI app serving `sandbox`."""

    def api(route: str, handler: _Handler, *, auth: bool = True) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            response = await _answer(sandbox, request, handler, auth)
            sandbox.record(route, response.status_code)
            if log_requests:
                log.info("kazoo_sandbox.request", route=route, status=response.status_code)
            return response
        return endpoint

    async def user_auth(request: Request) -> _Answer:
        token = sandbox.user_auth(await _data(request))
        return _Answer(sandbox.auth_answer(), 201, auth_token=token)

    async def api_auth(request: Request) -> _Answer:
        token = sandbox.api_auth(await _data(request))
        return _Answer(sandbox.auth_answer(), 201, auth_token=token)

    async def users(_: Request) -> _Answer:
        return _Answer([{"id": u["id"], "username": u["username"], "first_name": u["first_name"],
                         "last_name": u["last_name"], "priv_level": u["priv_level"]} for u in sandbox.users.values()])

    async def user(request: Request) -> _Answer:
        return _Answer(sandbox.user(request.path_params["id"]))

    async def devices(request: Request) -> _Answer:
        if request.method == "PUT":
            return _Answer(sandbox.create_device(await _data(request)), 201)
        return _Answer([{"id": d["id"], "name": d["name"], "device_type": d.get("device_type", ""),
                         "enabled": d.get("enabled", True), "owner_id": d.get("owner_id")}
                        for d in sandbox.devices.values()])

    async def device(request: Request) -> _Answer:
        if request.method == "DELETE":
            return _Answer(sandbox.delete_device(request.path_params["id"]))
        return _Answer(sandbox.device(request.path_params["id"]))

    def quickcall(kind: str) -> _Handler:
        async def handler(request: Request) -> _Answer:
            body_cavs: dict[str, Any] = {}
            if request.method == "POST" and (raw := await request.body()).strip():
                cavs = _envelope_data(raw).get("custom_application_vars", {})
                body_cavs = cavs if isinstance(cavs, dict) else {}
            request_id = request.state.request_id
            data = sandbox.quickcall(kind, request.path_params["id"], request.path_params["number"],
                                     dict(request.query_params), body_cavs, request_id)
            return _Answer(data, 202)
        return handler

    async def callflows(request: Request) -> _Answer:
        if request.method == "PUT":
            return _Answer(sandbox.save_callflow(await _data(request)), 201)
        return _Answer(sandbox.list_callflows())

    async def callflow(request: Request) -> _Answer:
        callflow_id = request.path_params["id"]
        if request.method == "POST":
            return _Answer(sandbox.save_callflow(await _data(request), callflow_id))
        if request.method == "DELETE":
            return _Answer(sandbox.delete_callflow(callflow_id))
        return _Answer(sandbox.callflow(callflow_id))

    async def cdrs(request: Request) -> _Answer:
        query = dict(request.query_params)
        rows = sandbox.list_cdrs(query)
        if not rows and sandbox.knobs.empty_list_204:
            return _Answer(None, 204)
        if query.get("paginate") == "false":
            return _Answer(rows)
        start = _start_key(query.get("start_key"))
        size = _page_size(query.get("page_size"))
        page = rows[start: start + size]
        envelope: dict[str, Any] = {"page_size": len(page), "start_key": _key(start)}
        if start + size < len(rows):
            envelope["next_start_key"] = _key(start + size)
        return _Answer(page, **envelope)

    async def cdr(request: Request) -> _Answer:
        return _Answer(sandbox.cdr(request.path_params["id"]))

    async def channels(_: Request) -> _Answer:
        return _Answer(sandbox.channels())

    async def counters(_: Request) -> Response:
        return JSONResponse({"quickcalls": dict(sandbox.quickcalls), "requests": dict(sandbox.requests),
                             "channels": len(sandbox.channels()), "cdrs": len(sandbox.cdrs)})

    account = "/v2/accounts/{account}"
    inner = Starlette(routes=[
        Route("/v2/user_auth", api("PUT /user_auth", user_auth, auth=False), methods=["PUT"]),
        Route("/v2/api_auth", api("PUT /api_auth", api_auth, auth=False), methods=["PUT"]),
        Route(account + "/users", api("GET /users", users), methods=["GET"]),
        Route(account + "/users/{id}", api("GET /users/{id}", user), methods=["GET"]),
        Route(account + "/users/{id}/quickcall/{number}", api("GET /users/{id}/quickcall", quickcall("users")),
              methods=["GET", "POST"]),
        Route(account + "/devices", api("GET /devices", devices), methods=["GET"]),
        Route(account + "/devices", api("PUT /devices", devices), methods=["PUT"]),
        Route(account + "/devices/{id}", api("GET /devices/{id}", device), methods=["GET"]),
        Route(account + "/devices/{id}", api("DELETE /devices/{id}", device), methods=["DELETE"]),
        Route(account + "/devices/{id}/quickcall/{number}",
              api("GET /devices/{id}/quickcall", quickcall("devices")), methods=["GET", "POST"]),
        Route(account + "/callflows", api("GET /callflows", callflows), methods=["GET"]),
        Route(account + "/callflows", api("PUT /callflows", callflows), methods=["PUT"]),
        Route(account + "/callflows/{id}", api("GET /callflows/{id}", callflow), methods=["GET"]),
        Route(account + "/callflows/{id}", api("POST /callflows/{id}", callflow), methods=["POST"]),
        Route(account + "/callflows/{id}", api("DELETE /callflows/{id}", callflow), methods=["DELETE"]),
        Route(account + "/cdrs", api("GET /cdrs", cdrs), methods=["GET"]),
        Route(account + "/cdrs/{id}", api("GET /cdrs/{id}", cdr), methods=["GET"]),
        Route(account + "/channels", api("GET /channels", channels), methods=["GET"]),
        *knob_routes(sandbox),
        Route("/sandbox/counters", counters, methods=["GET"]),
    ])

    return refusing_when_down(inner, lambda: sandbox.knobs.down, lambda: sandbox.record("(down)", 0),
                              _envelope(503, "the sandbox is down", {}, "", ""))


async def _answer(sandbox: KazooSandbox, request: Request, handler: _Handler, auth: bool) -> Response:
    request_id = request.state.request_id = sandbox.request_id()
    token = request.headers.get("x-auth-token", "")
    if not await sandbox.delay():
        return _envelope(503, "the sandbox is stopping", {}, token, request_id)
    fault = sandbox.take_fault()
    if fault is not None:
        return _envelope(fault, "a fault the sandbox was told to answer", {"message": "sandbox fault"}, token,
                         request_id)
    try:
        if auth:
            if not token or not sandbox.check_token(token):
                raise system_error(401, "invalid_credentials", "invalid credentials")
            sandbox.check_account(request.path_params.get("account", ""))
        answer = await handler(request)
    except Refused as refused:
        return _envelope(refused.status, refused.message, refused.data, token, request_id)
    if answer.status == 204:
        return Response(status_code=204)
    body = {"auth_token": answer.envelope.pop("auth_token", token), "data": answer.data, "request_id": request_id,
            "revision": secrets.token_hex(16), "status": "success", "node": "sandbox",
            "timestamp": _now_iso(), "version": "sandbox", **answer.envelope}
    return JSONResponse(body, status_code=answer.status)


def _envelope(status: int, message: str, data: dict[str, Any], token: str, request_id: str) -> Response:
    body = {"auth_token": token, "data": data, "error": str(status), "message": message,
            "request_id": request_id, "status": "error", "node": "sandbox", "timestamp": _now_iso(),
            "version": "sandbox"}
    return JSONResponse(body, status_code=status)


async def _data(request: Request) -> dict[str, Any]:
    """The request envelope's `data` object (a 400 `invalid envelope` otherwise)."""
    return _envelope_data(await request.body())


def _envelope_data(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        raise Refused(400, "invalid json", {"message": "failed to parse JSON"}) from None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise validation_error("data", "required", "Field is required but missing")
    return data


def _key(offset: int) -> str:
    """An opaque start key, as Kazoo's are (base64 of a term)."""
    return base64.urlsafe_b64encode(f"o{offset}".encode()).decode().rstrip("=")


def _start_key(value: str | None) -> int:
    if not value:
        return 0
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        text = ""
    if not (text.startswith("o") and text[1:].isdigit()):
        raise validation_error("start_key", "invalid", "start_key is not one this server gave")
    return int(text[1:])


def _page_size(value: str | None) -> int:
    if value is None:
        return 50
    if not value.isdigit() or not 1 <= int(value) <= 1000:
        raise validation_error("page_size", "type", "page_size: 1 to 1000")
    return int(value)


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

