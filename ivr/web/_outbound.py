"""The outbound jobs HTTP API: `/v1/outbound/jobs` and the OpenAPI document that describes it.

The routes only translate HTTP to `Outbound` (the one way in, which the CLI uses too), so a job
is checked by the same rules whichever way it came. What is HTTP's own is here: bearer tokens,
the body's media type, size and JSON, and the status codes.

Order of checks on every request: the token first, and nothing else happens without it (the
body is not even read); then the body's type, size and JSON; then every rule of `JobRequest`
at once, so a client fixes all its mistakes in one round; then `Outbound.submit`, for the rules
that depend on this line's settings (platform, language).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn

from pydantic import SecretStr, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ivr.embedded_http import read_capped
from ivr.errors import JobConflictError, JobInputError, JobNotFoundError, StoreError
from ivr.logging import ThrottledWarning, get_logger
from ivr.outbound import JobRequest, request_errors
from ivr.outbound._jobs import MAX_PAGE, Outbound
from ivr.web._openapi import CANCEL_PATH, JOB_PATH, JOBS_PATH, OPENAPI_PATH, openapi_document

log = get_logger("ivr.web")

MAX_BODY = 16 * 1024
"""Bytes a job request may have: a whole job is under 1 KiB; more is a mistake or an attack."""
DEFAULT_LIMIT = 50
_REFUSALS_LOGGED_EVERY = 10.0
_LIST_PARAMETERS = ("status", "limit", "cursor")
_NO_STORE = {"Cache-Control": "no-store"}

Endpoint = Callable[[Request], Awaitable[Response]]


class _Tokens:
    """The configured bearer tokens, compared in constant time.

    Both sides are hashed first, so that the comparison takes as long whatever the length of
    what was sent, and every token is compared, so the time does not say which one matched.
    """

    def __init__(self, tokens: Sequence[SecretStr]) -> None:
        self._digests = [_digest(token.get_secret_value()) for token in tokens]

    def __bool__(self) -> bool:
        return bool(self._digests)

    def refusal(self, authorization: str | None) -> str | None:
        """Why this `Authorization` header is refused (missing, malformed, wrong), or None."""
        if authorization is None:
            return "missing"
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token or " " in token:
            return "malformed"
        presented = _digest(token)
        matched = False
        for digest in self._digests:
            matched |= hmac.compare_digest(presented, digest)
        return None if matched else "wrong"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class _Refused(Exception):
    """A request that ends here with `status` and its `body` (an error the client can act on)."""

    def __init__(self, status: int, error: str, errors: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(error)
        self.status = status
        self.body: dict[str, Any] = {"error": error}
        if errors:
            self.body["errors"] = [{"field": field[:64], "rule": rule} for field, rule in errors]


def _invalid(field: str, rule: str) -> NoReturn:
    raise _Refused(422, "invalid", [(field, rule)])


def _json(body: object, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={**_NO_STORE, **(headers or {})})


def outbound_routes(outbound: Outbound | None, api_tokens: Sequence[SecretStr]) -> list[BaseRoute]:
    """The API's routes, or none at all when there is no `outbound` (API off) or no token: then
    its paths answer 404 as any unknown path does, and a scan learns nothing.

    `/v1/openapi.json` is served with the API and without a token: it holds no secret, and tools
    that generate a client read it before anyone gives them a token. Without the API, no document.
    """
    tokens = _Tokens(api_tokens)
    if outbound is None or not tokens:
        return []
    api = _Api(outbound)
    refused = ThrottledWarning(log, "outbound_api.unauthorized", every=_REFUSALS_LOGGED_EVERY)

    def guarded(handler: Endpoint) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            why = tokens.refusal(request.headers.get("authorization"))
            if why is not None:
                refused.note(reason=why, peer=request.client.host if request.client else None)
                return JSONResponse({"error": "unauthorized"}, status_code=401,
                                    headers={**_NO_STORE, "WWW-Authenticate": "Bearer"})
            try:
                return await handler(request)
            except _Refused as exc:
                return _json(exc.body, exc.status)
            except JobInputError as exc:
                return _json({"error": "invalid", "errors": [{"field": exc.field, "rule": exc.rule}]}, 422)
            except JobNotFoundError:
                return _json({"error": "not_found"}, 404)
            except StoreError as exc:
                log.warning("outbound_api.store_failed", error=type(exc).__name__)
                return _json({"error": "unavailable"}, 503)
        return endpoint

    async def openapi(_: Request) -> Response:
        return JSONResponse(openapi_document())

    return [
        Route(JOBS_PATH, guarded(api.submit), methods=["POST"]),
        Route(JOBS_PATH, guarded(api.list), methods=["GET"]),
        Route(JOB_PATH, guarded(api.get), methods=["GET"]),
        Route(CANCEL_PATH, guarded(api.cancel), methods=["POST"]),
        Route(OPENAPI_PATH, openapi, methods=["GET"]),
    ]


class _Api:
    """The four operations, each once the token is checked."""

    def __init__(self, outbound: Outbound) -> None:
        self._outbound = outbound

    async def submit(self, request: Request) -> Response:
        body = await _json_object(request)
        header_key = request.headers.get("idempotency-key")
        _check_request(body, header_key)
        try:
            job, created = await self._outbound.submit(body, header_key)
        except JobConflictError:
            reused = ("idempotency_key", "was used within 24 h for another request")
            raise _Refused(409, "conflict", [reused]) from None
        if not created:
            return _json(job.view())
        log.info("outbound.job_submitted", id=job.id, kind=job.kind.value, via=job.via)
        return _json(job.view(), 201, {"Location": f"{JOBS_PATH}/{job.id}"})

    async def get(self, request: Request) -> Response:
        return _json((await self._outbound.get(request.path_params["id"])).view())

    async def list(self, request: Request) -> Response:
        query = request.query_params
        for name in query:
            if name not in _LIST_PARAMETERS:
                _invalid(name, f"is not a parameter of this list ({', '.join(_LIST_PARAMETERS)})")
            if len(query.getlist(name)) > 1:
                _invalid(name, "is given more than once")
        status, limit, cursor = (query.get(name) or None for name in _LIST_PARAMETERS)
        if limit is not None and not (limit.isascii() and limit.isdigit() and len(limit) <= 4):
            _invalid("limit", f"must be a whole number, 1 to {MAX_PAGE}")
        jobs, next_cursor = await self._outbound.list(status, int(limit) if limit else DEFAULT_LIMIT, cursor)
        return _json({"jobs": [job.view() for job in jobs], "next_cursor": next_cursor})

    async def cancel(self, request: Request) -> Response:
        return _json((await self._outbound.cancel(request.path_params["id"])).view())


def _check_request(body: dict[str, Any], header_key: str | None) -> None:
    """Every rule `JobRequest` holds, at once (`Outbound.submit` stops at the first)."""
    errors: list[tuple[str, str]] = []
    merged = dict(body)
    if header_key is not None:
        if merged.get("idempotency_key") not in (None, header_key):
            errors.append(("idempotency_key", "differs from the Idempotency-Key header"))
        else:
            merged["idempotency_key"] = header_key
    try:
        JobRequest.model_validate(merged)
    except ValidationError as exc:
        errors.extend(request_errors(exc))
    if errors:
        raise _Refused(422, "invalid", errors)


async def _json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object: application/json, UTF-8, at most `MAX_BODY` bytes."""
    media_type, _, parameters = request.headers.get("content-type", "").partition(";")
    charset = next((value.strip().strip('"').lower() for name, _, value in
                    (part.partition("=") for part in parameters.split(";")) if name.strip().lower() == "charset"),
                   "utf-8")
    if media_type.strip().lower() != "application/json" or charset not in ("utf-8", "utf8"):
        raise _Refused(415, "unsupported_media_type", [("Content-Type", "must be application/json (UTF-8)")])
    raw = await _read_capped(request)
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_no_constant, object_pairs_hook=_no_duplicates)
        json.dumps(body, ensure_ascii=False).encode("utf-8")  # a lone surrogate escape (\ud800) is not text
    except UnicodeError:
        _invalid("body", "is not UTF-8 text")
    except json.JSONDecodeError as exc:
        _invalid("body", f"is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    except RecursionError:
        _invalid("body", "is nested too deep")
    if not isinstance(body, dict):
        _invalid("body", "must be a JSON object")
    return body


async def _read_capped(request: Request) -> bytes:
    """The body, refused (413) as soon as it passes `MAX_BODY`, whatever Content-Length said."""
    body = await read_capped(request, MAX_BODY)
    if body is None:
        raise _Refused(413, "too_large", [("body", f"must be at most {MAX_BODY} bytes")])
    return body


def _no_constant(name: str) -> NoReturn:
    _invalid("body", f"is not JSON: {name} is not a number JSON allows")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A field given twice is refused: which one counts would be a guess."""
    seen: dict[str, Any] = {}
    for name, value in pairs:
        if name in seen:
            _invalid(name[:64], "is given more than once")
        seen[name] = value
    return seen
