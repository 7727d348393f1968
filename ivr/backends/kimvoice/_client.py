"""The async KimVoice client: one pooled httpx transport, deadlines, retries, a circuit breaker,
typed results.

Requests go straight to the httpx transport, not through `httpx.AsyncClient`: KimVoice is four
requests of every call, and the client's per-request layers (URL merging and parsing, cookie
extraction, the auth and redirect machinery) cost a fifth of the service's CPU in the soak
(benchmarks/README.md, Soak), for nothing KimVoice uses: it sets no cookie, and never redirects.

Retries: every method but LogOn is a GET, safe to send again. An attempt that gets a 500, 502,
503 or 504 (a 9001 ApiError whatever its status), a refused or reset connection, or no answer
within its own share of the deadline is tried again after a short jittered pause, up to
`max_attempts`, always inside the call's deadline (HealthCheck's 2 s included): an attempt may
use `ATTEMPT_SHARE` of the time left, so that another still fits. A 4xx, or an ApiError other
than 9001 (even with a 5xx status), is KimVoice's answer and never retried. `on_retry(method,
cause)` is told of each retry (/metrics).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import httpx
from pydantic import ValidationError

from ivr.backends.kimvoice._breaker import CircuitBreaker
from ivr.backends.kimvoice._methods import (
    GET_CBS_CODE,
    GET_KEY_HOLDERS,
    GET_UPDATE_CODE,
    HEALTH_CHECK,
    IDENTIFY_KEY_HOLDER,
    LOG_ON_PATH,
    VALIDATE_KEY_HOLDER,
    Method,
)
from ivr.backends.kimvoice._models import (
    ApiErrorBody,
    CbsCode,
    CodeType,
    HealthCheck,
    IdentifiedKeyHolder,
    KeyHolders,
    UpdateCode,
    Validation,
    WireModel,
)
from ivr.backends.kimvoice._token import Token, TokenCache
from ivr.backends.kimvoice._transport import KeepAliveTransport
from ivr.errors import (
    ApiError,
    AuthenticationError,
    BadResponseError,
    CircuitOpenError,
    DeadlineExceededError,
    ErrorCode,
    InvalidInputError,
    KimVoiceError,
    MaintenanceError,
    NotAuthorizedError,
    UnavailableError,
)
from ivr.http_answers import MAX_ANSWER_BYTES, AnswerTooLarge, misfit, read_bounded
from ivr.logging import get_logger

__all__ = ["ATTEMPT_SHARE", "KimVoice", "KimVoiceClient"]

log = get_logger("ivr.kimvoice")

M = TypeVar("M", bound=WireModel)

ATTEMPT_SHARE = 0.75
"""The share of the time left that one attempt may take, but the last: a retry still fits."""
_MIN_ATTEMPT = 0.05
"""Seconds: with less time left than this, another attempt is not worth sending."""
_RETRY_STATUSES = frozenset({500, 502, 503, 504})
# Errors after which the request surely or probably did not reach the application, or its
# answer was lost.
_RETRY_ERRORS = (
    httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError
)
_HEADERS = [(b"User-Agent", b"keybox-ivr"), (b"Accept", b"application/json"),
            (b"Accept-Encoding", b"identity")]  # identity: a compressed answer could unpack past its bound
_NOT_AUTHORIZED = frozenset({ErrorCode.NON_PAYMENT, ErrorCode.KEY_NOT_ASSIGNED, ErrorCode.KEY_HOLDER_SUSPENDED})


class KimVoice(Protocol):
    """What the call flow needs of KimVoice; `KimVoiceClient` is the real one."""

    async def health_check(self, *, timeout: float | None = None) -> HealthCheck: ...

    async def get_key_holders(self, key_number: int, pin: str, *, timeout: float | None = None) -> KeyHolders: ...

    async def identify_key_holder(self, key_number: int, *, timeout: float | None = None) -> IdentifiedKeyHolder: ...

    async def validate_key_holder(
        self, key_number: int, member_number: int, pod_number: int, code_type: CodeType | str,
        *, timeout: float | None = None,
    ) -> Validation: ...

    async def get_update_code(
        self, key_number: int, primary_member: int, update_member: int, pod_number: int,
        *, timeout: float | None = None,
    ) -> UpdateCode: ...

    async def get_cbs_code(
        self, box_number: int, shackle_code: str, key_number: int, primary_member: int,
        *, timeout: float | None = None,
    ) -> CbsCode: ...


class KimVoiceClient:
    """KimVoice over HTTP. Use one instance per process: it pools connections and the JWT.

    Every method validates its parameters before sending (`InvalidParameterError`), finishes
    within its deadline (`timeout`, else the client's) or raises `DeadlineExceededError`, and
    raises only the `KimVoiceError` family of `ivr.errors`.
    """

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        timeout: float = 8.0,
        max_attempts: int = 3,
        backoff: float = 0.05,
        max_connections: int = 100,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self._credentials = {"clientId": client_id, "clientSecret": client_secret}
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._base = base_url.rstrip("/") + "/api/V1/"
        if transport is None:
            proxy = _proxy_for(self._base)
            limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
            # Not httpcore's pool unless behind a proxy: it polls every pooled connection per
            # request (encode/httpcore#1035).
            transport = (httpx.AsyncHTTPTransport(proxy=proxy, limits=limits) if proxy else
                         KeepAliveTransport(max_connections=max_connections, max_body_size=MAX_ANSWER_BYTES))
        self._transport = transport
        self.tokens = TokenCache(self._log_on_now, clock=clock)
        self.breaker = breaker or CircuitBreaker()
        self.on_retry: list[Callable[[str, str], None]] = []

    async def __aenter__(self) -> KimVoiceClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._transport.aclose()

    # -- the seed's methods -------------------------------------------------------------

    async def log_on(self) -> Token:
        """A fresh JWT, shared with every later call of this client."""
        token = self.tokens.current
        if token is not None:
            self.tokens.invalidate(token)
        return await self.tokens.get()

    async def health_check(self, *, timeout: float | None = None) -> HealthCheck:
        return await self._call(HEALTH_CHECK, {}, timeout)

    async def get_key_holders(self, key_number: int, pin: str, *, timeout: float | None = None) -> KeyHolders:
        return await self._call(GET_KEY_HOLDERS, {"key_number": key_number, "pin": pin}, timeout)

    async def identify_key_holder(self, key_number: int, *, timeout: float | None = None) -> IdentifiedKeyHolder:
        return await self._call(IDENTIFY_KEY_HOLDER, {"key_number": key_number}, timeout)

    async def validate_key_holder(
        self, key_number: int, member_number: int, pod_number: int, code_type: CodeType | str,
        *, timeout: float | None = None,
    ) -> Validation:
        """The validation a code needs; `NotAuthorizedError` when KimVoice refuses it, by an
        ApiError 2001-2003 or by an answer whose `isAuthorized` is false: no code may follow."""
        params = {"key_number": key_number, "member_number": member_number, "pod_number": pod_number,
                  "code_type": code_type}
        validation = await self._call(VALIDATE_KEY_HOLDER, params, timeout)
        if not validation.is_authorized:
            raise _not_authorized(VALIDATE_KEY_HOLDER.name)
        return validation

    async def get_update_code(
        self, key_number: int, primary_member: int, update_member: int, pod_number: int,
        *, timeout: float | None = None,
    ) -> UpdateCode:
        params = {"key_number": key_number, "primary_member": primary_member, "update_member": update_member,
                  "pod_number": pod_number}
        return await self._call(GET_UPDATE_CODE, params, timeout)

    async def get_cbs_code(
        self, box_number: int, shackle_code: str, key_number: int, primary_member: int,
        *, timeout: float | None = None,
    ) -> CbsCode:
        params = {"box_number": box_number, "shackle_code": shackle_code, "key_number": key_number,
                  "primary_member": primary_member}
        return await self._call(GET_CBS_CODE, params, timeout)

    # -- the machinery ------------------------------------------------------------------

    async def _call(self, method: Method[M], values: dict[str, Any], timeout: float | None) -> M:
        query = urllib.parse.urlencode(method.params.parse(method.name, values).to_query())
        url = f"{self._base}{method.path}?{query}" if query else self._base + method.path
        deadline = timeout if timeout is not None else self._timeout
        granted = self.breaker.allow()
        if granted is None:
            raise CircuitOpenError(f"KimVoice {method.name}: not asked, the circuit breaker is open")
        ok: bool | None = None
        try:
            async with asyncio.timeout(deadline):
                result = await self._get(method, url, asyncio.get_running_loop().time() + deadline)
            ok = True
            return result
        except TimeoutError:
            ok = False
            log.warning("kimvoice.deadline", method=method.name, deadline_s=deadline)
            raise DeadlineExceededError(f"KimVoice {method.name} did not answer within {deadline:g} s") from None
        except UnavailableError:
            ok = False
            raise
        except KimVoiceError:
            ok = True  # KimVoice answered (an ApiError, a refused token): it is up
            raise
        finally:
            self.breaker.done(granted, ok)

    async def _get(self, method: Method[M], url: str, deadline_at: float) -> M:
        refreshed = False
        attempt = 0
        loop = asyncio.get_running_loop()
        while True:
            attempt += 1
            token = await self.tokens.get()
            left = deadline_at - loop.time()
            last = attempt >= self._max_attempts or left * (1 - ATTEMPT_SHARE) < _MIN_ATTEMPT
            cause: str | None
            try:
                async with asyncio.timeout(left if last else left * ATTEMPT_SHARE):
                    response = await self._send(method.name, attempt, httpx.Request(
                        "GET", url, headers=[*_HEADERS, (b"Authorization", b"Bearer " + token.value.encode("ascii"))],
                    ))
                cause = _retry_cause(response)
            except TimeoutError:
                if last:
                    raise
                response, cause = None, "timeout"
            except _TransportFailure as failure:
                if last:
                    raise UnavailableError(f"KimVoice {method.name}: {failure}") from None
                response, cause = None, failure.cause
            if cause is not None and not last:
                log.info("kimvoice.retry", method=method.name, attempt=attempt, cause=cause)
                for observe in self.on_retry:
                    observe(method.name, cause)
                await self._pause(attempt, deadline_at - loop.time())
                continue
            assert response is not None
            if response.status_code == 401 and not refreshed:
                self.tokens.invalidate(token)
                refreshed = True
                attempt -= 1
                continue
            return _decode(method.name, response, method.result)

    async def _log_on_now(self) -> Token:
        try:
            async with asyncio.timeout(self._timeout):
                return await self._post_log_on()
        except TimeoutError:
            raise DeadlineExceededError(f"KimVoice LogOn did not answer within {self._timeout:g} s") from None

    async def _post_log_on(self) -> Token:
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._send("LogOn", attempt, httpx.Request(
                    "POST", self._base + LOG_ON_PATH, headers=_HEADERS, json=self._credentials))
            except _TransportFailure as failure:
                if attempt >= self._max_attempts:
                    raise UnavailableError(f"KimVoice LogOn: {failure}") from None
                await self._pause(attempt, self._timeout)
                continue
            if response.status_code in _RETRY_STATUSES and attempt < self._max_attempts:
                await self._pause(attempt, self._timeout)
                continue
            if response.status_code == 401:
                raise AuthenticationError("KimVoice refused the client id and secret (IVR_KIMVOICE_CLIENT_ID/_SECRET)")
            if response.status_code != 200:
                raise _error_for(response, "LogOn")
            return Token.parse(_token_text(response))

    async def _send(self, name: str, attempt: int, request: httpx.Request) -> httpx.Response:
        """One HTTP exchange; `_TransportFailure` when it failed in a way worth another attempt.
        Its time is bounded by the caller's `asyncio.timeout`, not by httpx's timeouts."""
        started = time.perf_counter()
        try:
            streamed = await self._transport.handle_async_request(request)
            streamed.request = request  # as AsyncClient.send does: httpx's transport leaves it unset
            try:
                response = await read_bounded(streamed, MAX_ANSWER_BYTES)
            finally:
                await streamed.aclose()
        except AnswerTooLarge as exc:
            log.warning("kimvoice.answer_refused", method=name, attempt=attempt, error=str(exc))
            raise BadResponseError(f"KimVoice {name} answered with a body it does not take: {exc}") from None
        except _RETRY_ERRORS as exc:
            ms = (time.perf_counter() - started) * 1000
            log.warning("kimvoice.request", method=name, attempt=attempt, error=type(exc).__name__, ms=round(ms, 1))
            connect = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
            raise _TransportFailure("connect" if connect else "reset", _describe_transport_error(exc)) from None
        except httpx.TimeoutException:
            raise DeadlineExceededError(f"KimVoice {name} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise UnavailableError(f"KimVoice {name}: {_describe_transport_error(exc)}") from None
        ms = (time.perf_counter() - started) * 1000
        log.info("kimvoice.request", method=name, attempt=attempt, status=response.status_code, ms=round(ms, 1))
        return response

    async def _pause(self, attempt: int, left: float) -> None:
        """A short jittered pause before another attempt, never more than half the time left."""
        await asyncio.sleep(min(random.uniform(0, self._backoff * 2 ** (attempt - 1)), max(0.0, left / 2)))


class _TransportFailure(Exception):
    """An attempt that got no answer, in a way another attempt may not (`cause`: connect, reset)."""

    def __init__(self, cause: str, what: str) -> None:
        super().__init__(what)
        self.cause = cause


def _retry_cause(response: httpx.Response) -> str | None:
    """Why this answer is worth another attempt (for /metrics), or None: it is KimVoice's answer."""
    if response.status_code < 400:
        return None
    body = _api_error_body(response)
    if body is not None:
        return "maintenance" if body.error_code == ErrorCode.MAINTENANCE else None
    return str(response.status_code) if response.status_code in _RETRY_STATUSES else None


def _proxy_for(url: str) -> str | None:
    """The HTTP(S)_PROXY that applies to `url`, as httpx would read it: then httpx's own
    transport, which speaks to proxies (KeepAliveTransport does not)."""
    parts = urllib.parse.urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy is None or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxy


def _decode(name: str, response: httpx.Response, model: type[M]) -> M:
    if response.status_code != 200:
        raise _error_for(response, name)
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise BadResponseError(
            f"KimVoice {name} answered with a body that is not a {model.__name__} ({misfit(exc)})") from None


def _error_for(response: httpx.Response, name: str) -> Exception:
    status = response.status_code
    body = _api_error_body(response)
    if body is not None:
        cls: type[ApiError] = ApiError
        if body.error_code in _NOT_AUTHORIZED:
            cls = NotAuthorizedError
        elif body.error_code == ErrorCode.MAINTENANCE:
            cls = MaintenanceError
        return cls(name, status, body.error_code, body.message, body.user_message)
    if status == 400:
        return InvalidInputError(f"KimVoice {name} found a parameter malformed (HTTP 400)")
    if status == 401:
        return AuthenticationError(f"KimVoice {name} refused a fresh token (HTTP 401)")
    return UnavailableError(f"KimVoice {name} answered HTTP {status} without an ApiError")


def _not_authorized(name: str) -> NotAuthorizedError:
    """A 200 whose `isAuthorized` is false, refused as 2001-2003 are. KimVoice gave no ApiError:
    the code is 0, and the text says what it did answer."""
    error = NotAuthorizedError(name, 200, 0, "isAuthorized false")
    error.args = (f"KimVoice {name} answered isAuthorized false: the key holder may not have codes",)
    return error


def _api_error_body(response: httpx.Response) -> ApiErrorBody | None:
    try:
        return ApiErrorBody.model_validate_json(response.content)
    except ValidationError:
        return None


def _token_text(response: httpx.Response) -> str:
    text = response.text.strip()
    if text.startswith('"'):
        try:
            text = json.loads(text)
        except json.JSONDecodeError:
            raise BadResponseError("KimVoice Token/LogOn answered with broken JSON") from None
    if not isinstance(text, str) or not text:
        raise BadResponseError("KimVoice Token/LogOn answered without a token")
    return text


def _describe_transport_error(exc: httpx.HTTPError) -> str:
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
        return f"cannot connect ({exc or type(exc).__name__})"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the connection closed before a complete answer (truncated or broken response)"
    return f"transport error {type(exc).__name__}"
