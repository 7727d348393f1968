"""The Codelocks sandbox over HTTP: the guide's paths (`/n/1/netcode/{id}`, `/u/1/durations`)
behind `x-api-key`, knobs and counters under `/sandbox/`.

Errors come as `{"message": "..."}` with the guide's statuses; a wrong or missing key is a 403
("Missing or invalid authentication key"), a used-up quota `quota_status` with "Limit Exceeded".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from ivr.backends.codelocks.sandbox._state import CodelocksSandbox, Refused
from ivr.logging import get_logger
from ivr.sandbox_kit import knob_routes, refusing_when_down

log = get_logger("ivr.backends.codelocks.sandbox")

_Handler = Callable[[Request], Any]
_FAULTS = {500: "Internal server error", 502: "Tertiary endpoint error"}


def create_app(sandbox: CodelocksSandbox, *, log_requests: bool = False) -> ASGIApp:
    """The ASGI app serving `sandbox`."""

    def api(route: str, kind: str, handler: _Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            response = await _answer(sandbox, request, kind, handler)
            sandbox.record(route, response.status_code)
            if log_requests:
                log.info("codelocks_sandbox.request", route=route, status=response.status_code)
            return response
        return endpoint

    def netcode(request: Request) -> Any:
        return sandbox.netcode(request.path_params["id"], dict(request.query_params))

    def durations(request: Request) -> Any:
        return sandbox.durations(dict(request.query_params))

    async def counters(_: Request) -> Response:
        return JSONResponse({"netcode_calls": dict(sandbox.netcode_calls), "utility_calls": dict(sandbox.utility_calls),
                             "requests": dict(sandbox.requests)})

    inner = Starlette(routes=[
        Route("/n/1/netcode/{id}", api("GET /n/1/netcode/{id}", "netcode", netcode), methods=["GET"]),
        Route("/u/1/durations", api("GET /u/1/durations", "utility", durations), methods=["GET"]),
        *knob_routes(sandbox),
        Route("/sandbox/counters", counters, methods=["GET"]),
    ])

    return refusing_when_down(inner, lambda: sandbox.knobs.down, lambda: sandbox.record("(down)", 0),
                              _error(503, "the sandbox is down"))


async def _answer(sandbox: CodelocksSandbox, request: Request, kind: str, handler: _Handler) -> Response:
    if not await sandbox.delay():
        return _error(503, "the sandbox is stopping")
    fault = sandbox.take_fault()
    if fault is not None:
        return _error(fault, _FAULTS.get(fault, "a fault the sandbox was told to answer"))
    if not sandbox.check_key(request.headers.get("x-api-key", "")):
        return _error(403, "Missing or invalid authentication key")
    try:
        sandbox.count("netcode" if kind == "netcode" else "utility")
        return JSONResponse(handler(request))
    except Refused as refused:
        return _error(refused.status, refused.message)


def _error(status: int, message: str) -> Response:
    return JSONResponse({"message": message}, status_code=status)
