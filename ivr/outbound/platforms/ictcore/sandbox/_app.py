"""The ICTCore sandbox over HTTP: ICTCore's paths at the root, knobs and counters under `/sandbox/`.

Errors come as ICTCore's REST server sends them: `{"error": {"code": 412, "message": "..."}}`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from ivr.logging import get_logger
from ivr.outbound.platforms.ictcore.sandbox._state import IctCoreSandbox
from ivr.sandbox_kit import Refused, knob_routes, refusing_when_down

log = get_logger("ivr.outbound.ictcore.sandbox")

_Handler = Callable[[Request], Awaitable[Any]]


def create_app(sandbox: IctCoreSandbox, *, log_requests: bool = False) -> ASGIApp:
    """The ASGI app serving `sandbox`."""

    def api(route: str, handler: _Handler, *, auth: bool = True) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            response = await _answer(sandbox, request, handler, auth)
            sandbox.record(route, response.status_code)
            if log_requests:
                log.info("ictcore_sandbox.request", route=route, status=response.status_code)
            return response
        return endpoint

    async def authenticate(request: Request) -> Any:
        body = await _body(request)
        username, password = body.get("username"), body.get("password")
        token = sandbox.authenticate(username, password) if isinstance(username, str) and isinstance(
            password, str) else None
        if token is None:
            raise Refused(401, "Invalid user name and password")
        # ICTCore answers the user object with its token (core/Api/Authenticate.php).
        return {"user_id": 1, "username": username, "token": token, "access_token": token,
                "expires_in": int(sandbox.knobs.token_lifetime), "token_type": "Bearer", "scope": "All"}

    async def contacts(request: Request) -> Any:
        if request.method == "GET":
            return sandbox.find_contacts(dict(request.query_params))
        contact_id = sandbox.create_contact(await _body(request))
        return None if sandbox.knobs.empty_create_body else sandbox.id_answer("contact", contact_id)

    async def voicetts(request: Request) -> Any:
        program_id = sandbox.create_program(await _body(request))
        return None if sandbox.knobs.empty_create_body else sandbox.id_answer("program", program_id)

    async def transmissions(request: Request) -> Any:
        transmission_id = sandbox.create_transmission(await _body(request))
        return None if sandbox.knobs.empty_create_body else sandbox.id_answer("transmission", transmission_id)

    async def transmission(request: Request) -> Any:
        return sandbox.transmission(request.path_params["tid"]).view()

    async def send(request: Request) -> Any:
        spool_id = sandbox.send(request.path_params["tid"])
        return None if sandbox.knobs.empty_send_body else sandbox.id_answer("spool", spool_id)

    async def status(request: Request) -> Any:
        return sandbox.status(request.path_params["tid"])

    async def detail(request: Request) -> Any:
        return sandbox.detail(request.path_params["tid"])

    async def counters(_: Request) -> Response:
        return JSONResponse({"sends": {str(k): v for k, v in sandbox.sends.items()},
                             "calls": {str(k): v for k, v in sandbox.calls.items()},
                             "requests": dict(sandbox.requests)})

    tid = "/transmissions/{tid:int}"
    inner = Starlette(routes=[
        Route("/authenticate", api("POST /authenticate", authenticate, auth=False), methods=["POST"]),
        Route("/contacts", api("GET /contacts", contacts), methods=["GET"]),
        Route("/contacts", api("POST /contacts", contacts), methods=["POST"]),
        Route("/programs/voicetts", api("POST /programs/voicetts", voicetts), methods=["POST"]),
        Route("/transmissions", api("POST /transmissions", transmissions), methods=["POST"]),
        Route(tid, api("GET /transmissions/{id}", transmission), methods=["GET"]),
        Route(tid + "/send", api("POST /transmissions/{id}/send", send), methods=["POST"]),
        Route(tid + "/status", api("GET /transmissions/{id}/status", status), methods=["GET"]),
        Route(tid + "/detail", api("GET /transmissions/{id}/detail", detail), methods=["GET"]),
        *knob_routes(sandbox),
        Route("/sandbox/counters", counters, methods=["GET"]),
    ])

    return refusing_when_down(inner, lambda: sandbox.knobs.down, lambda: sandbox.record("(down)", 0),
                              _error(503, "the sandbox is down"))


async def _answer(sandbox: IctCoreSandbox, request: Request, handler: _Handler, auth: bool) -> Response:
    if not await sandbox.delay():
        return _error(503, "the sandbox is stopping")
    fault = sandbox.take_fault()
    if fault is not None:
        return _error(fault, "a fault the sandbox was told to answer")
    if auth and not _authorized(sandbox, request):
        return _error(401, f"Invalid credentials, access is denied to {request.url.path}.",
                      {"WWW-Authenticate": 'Basic realm="ictcore"'})
    try:
        result = await handler(request)
    except Refused as refused:
        return _error(refused.status, refused.message)
    if result is None:
        return Response(status_code=200, media_type="application/json")  # an empty 200, as the quirk has it
    return JSONResponse(result)


def _authorized(sandbox: IctCoreSandbox, request: Request) -> bool:
    """A valid bearer token, or HTTP Basic with a user's password (core/lib/Http.php takes both)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return sandbox.check_token(value)
    if scheme.lower() == "basic" and value:
        try:
            username, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return sandbox.check_password(username, password)
    return False


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise Refused(412, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise Refused(412, "the body is not a JSON object")
    return body


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": {"code": status, "message": message}}, status_code=status, headers=headers)

