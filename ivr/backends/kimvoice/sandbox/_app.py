"""The sandbox over HTTP: KimVoice's wire under `/api/V1/`, fault knobs under `/sandbox/`.

Routing is case-insensitive on path and query names, as ASP.NET's is.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ivr.backends.kimvoice._methods import LOG_ON_PATH, METHODS, Method, Params
from ivr.backends.kimvoice.sandbox._service import Refused, Sandbox
from ivr.errors import ErrorCode
from ivr.logging import get_logger
from ivr.sandbox_kit import knob_routes

log = get_logger("ivr.sandbox")

_BY_PATH: dict[str, Method[Any]] = {m.path.lower(): m for m in METHODS}
_VERSION = re.compile(r"(?i)v(\d+)")


def create_app(sandbox: Sandbox, *, log_requests: bool = False) -> Starlette:
    """The ASGI app serving `sandbox`."""

    async def api(request: Request) -> Response:
        path = request.path_params["path"].strip("/").lower()
        name = "LogOn" if path == LOG_ON_PATH.lower() else _BY_PATH[path].name if path in _BY_PATH else path
        started = time.perf_counter()
        response = await _answer(sandbox, request, path)
        sandbox.record(name, response.status_code)
        if log_requests:
            ms = round((time.perf_counter() - started) * 1000, 1)
            log.info("sandbox.request", method=name, status=response.status_code, ms=ms)
        return response

    async def stats(_: Request) -> Response:
        return JSONResponse(sandbox.stats())

    async def reset(_: Request) -> Response:
        sandbox.reset()
        return Response(status_code=204)

    async def revoke(_: Request) -> Response:
        sandbox.revoke_tokens()
        return Response(status_code=204)

    return Starlette(
        routes=[
            Route("/api/{version}/{path:path}", api, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
            *knob_routes(sandbox, problem=_problem,
                         on_change=lambda knobs: log.info("sandbox.knobs", **knobs.model_dump(mode="json"))),
            Route("/sandbox/stats", stats, methods=["GET"]),
            Route("/sandbox/reset", reset, methods=["POST"]),
            Route("/sandbox/revoke-tokens", revoke, methods=["POST"]),
        ]
    )


async def _answer(sandbox: Sandbox, request: Request, path: str) -> Response:
    if not await sandbox.delay() or sandbox.should_fail(f"{request.method} {path}?{request.url.query}"):
        if sandbox.knobs.failure_status != 503:  # what a broken proxy or server sends: no ApiError body
            return Response(status_code=sandbox.knobs.failure_status)
        return _api_error(Refused(503, ErrorCode.MAINTENANCE, "Service unavailable (maintenance)."))
    version = _VERSION.fullmatch(request.path_params["version"])
    if version is None or int(version.group(1)) != 1:
        return _generic_400({"v": ["The field v must be between 1 and 1."]})
    if path == LOG_ON_PATH.lower():
        return await _log_on(sandbox, request) if request.method == "POST" else Response(status_code=405)
    method = _BY_PATH.get(path)
    if method is None:
        return Response(status_code=404)
    if request.method != "GET":
        return Response(status_code=405)
    token_id = _bearer(sandbox, request)
    if token_id is None:
        return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
    try:
        params = method.params.model_validate(_query(request, method.params))
    except ValidationError as exc:
        return _generic_400({".".join(map(str, e["loc"])): [e["msg"]] for e in exc.errors(include_input=False)})
    try:
        result = getattr(sandbox, method.attribute)(params, token_id)
    except Refused as refused:
        return _api_error(refused)
    return JSONResponse(result.to_wire())


async def _log_on(sandbox: Sandbox, request: Request) -> Response:
    try:
        body = json.loads(await request.body())
        lowered = {str(k).lower(): v for k, v in body.items()}
        client_id, secret = lowered["clientid"], lowered["clientsecret"]
        if not isinstance(client_id, str) or not isinstance(secret, str):
            raise TypeError
    except (ValueError, AttributeError, KeyError, TypeError):
        return _generic_400({"user": ["The UserLogInModel needs clientId and clientSecret."]})
    token = sandbox.log_on(client_id, secret)
    if token is None:
        return Response(status_code=401)
    return JSONResponse(token)


def _bearer(sandbox: Sandbox, request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return sandbox.token_id(token.strip()) if scheme.lower() == "bearer" and token else None


def _query(request: Request, params: type[Params]) -> dict[str, Any]:
    names = {info.alias.lower(): info.alias for info in params.model_fields.values() if info.alias}
    return {names.get(k.lower(), k): v for k, v in request.query_params.items()}


def _api_error(refused: Refused) -> Response:
    body = {"errorCode": int(refused.error_code), "message": refused.message, "userMessage": refused.user_message}
    return JSONResponse(body, status_code=refused.status)


def _generic_400(errors: dict[str, list[str]]) -> Response:
    # ASP.NET's ProblemDetails: a body, but not an ApiError.
    body = {"title": "One or more validation errors occurred.", "status": 400, "errors": errors}
    return JSONResponse(body, status_code=400)


def _problem(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))
    return str(exc)
