"""Kazoo's crossbar API (v2), the part the line uses: one pooled httpx client, a token, deadlines.

Checked against Kazoo's documentation and source (github.com/2600hz/kazoo), where the SDK's
method list is silent:

* `applications/crossbar/doc/user_authentication.md`, `api_authentication.md`: `PUT /user_auth`
  with `credentials` = md5 hex of `user:password` and `account_name`, or `PUT /api_auth` with
  `api_key`; the answer carries `auth_token` (top level) and `data.account_id`.
  `core/kazoo_proper/src/pqc_cb_api.erl` expects 201 for both; `crossbar_auth.erl` makes the token
  live `token_auth_expiry_s`, default one hour.
* `api_util.erl::create_default_resp_envelope`: answers are `{"status": "success", "data",
  "auth_token", "request_id", ...}`, errors `{"status": "error", "error": "<HTTP code>",
  "message", "data"}`; `cb_context.erl::add_system_error` gives a bad or expired token 401
  `invalid_credentials`, an unknown id 404 `bad_identifier`.
* `applications/crossbar/doc/quickcall.md`, `cb_quickcall.erl`: `GET .../{users|devices}/{id}/
  quickcall/{number}` answers 202 at once with the originate request as `data`; each endpoint leg's
  call id is `endpoints[].outbound_call_id` (`<36 hex>-quickcall`); every query-string parameter
  (options included) becomes a custom application variable (`cb_modules_util:cavs_from_context`).
* `applications/crossbar/doc/devices.md`, `kz_endpoint_v5.erl`: a device's `call_forward`
  (`enabled`, `number`, `require_keypress` default true: the callee must press 1 first,
  `keep_caller_id`, `substitute`, `direct_calls_only`); `cellphone` is a `device_type`.
* `applications/crossbar/doc/cdrs.md`, `filters.md`, `cb_cdrs.erl`, `crossbar_view.erl`: the list
  has fixed columns (`kzd_cdrs.hrl`), without `custom_application_vars`, so filter with
  `filter_custom_application_vars.<name>=<value>`; `created_from`/`created_to` are Gregorian
  seconds and a range over `crossbar.maximum_range` (31 days and an hour) is a 400; pages follow
  `next_start_key`; an empty list may be a 204 (`pqc_cb_cdrs.erl`).
* `applications/callflow/doc/pivot.md`, `schemas/callflows.pivot.json`: the pivot module's data
  `voice_url` (required), `method` (`get`/`post`), `req_format` (`kazoo`/`twiml`).
* `applications/crossbar/doc/channels.md`: `GET /accounts/{id}/channels`, the calls in progress.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from ivr.errors import KazooRejectedError, PlatformUnavailableError, SettingsError
from ivr.http_answers import MAX_ANSWER_BYTES, NoAnswer, exchange, peer_client
from ivr.logging import get_logger

__all__ = [
    "GREGORIAN_OFFSET",
    "JOB_VARIABLE",
    "MAX_ANSWER_BYTES",
    "MAX_CDR_RANGE",
    "Callflow",
    "CdrRow",
    "Channel",
    "KazooClient",
    "Quickcall",
    "gregorian",
    "pivot_flow",
    "printable",
]

log = get_logger("ivr.outbound.kazoo")

GREGORIAN_OFFSET = 62_167_219_200
"""Seconds from year 0 to 1970: Kazoo's timestamps are Gregorian seconds."""
MAX_CDR_RANGE = 31 * 86_400
"""The longest `created_from`..`created_to` asked for: Kazoo refuses more than 31 days (and an hour)."""
JOB_VARIABLE = "keybox_job_id"
"""The custom application variable a quickcall carries the job id in; its CDRs are found by it."""
TOKEN_RENEW_AFTER = 3000.0
"""Seconds after which a token is renewed before use: Kazoo's live an hour by default."""
_QUICKCALL_OPTIONS = frozenset({"auto_answer", "cid-name", "cid-number", "custom_application_vars",
                                "ignore-early-media", "media", "number_filter", "target_call_id", "timeout"})
_VARIABLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_SECRET_IN_URL = re.compile(r"(?i)(secret=)[^&\s\"',;]*")
_CREDENTIALS = "IVR_KAZOO_USERNAME / IVR_KAZOO_PASSWORD / IVR_KAZOO_ACCOUNT_NAME"
_API_KEY = "IVR_KAZOO_API_KEY"
_UNAVAILABLE_4XX = frozenset({408, 429})
"""4xx statuses that say "not now" rather than "not this": retried like a 5xx."""


@dataclass(frozen=True)
class Quickcall:
    """Kazoo's answer to a quickcall: the endpoint legs' call ids and the variables it set."""

    call_ids: tuple[str, ...]
    request_id: str
    variables: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CdrRow:
    """One row of the CDR list (its fixed columns); `raw` is the row as Kazoo sent it."""

    cdr_id: str
    call_id: str
    hangup_cause: str
    billing_seconds: int
    duration_seconds: int
    direction: str
    other_leg_call_id: str
    timestamp: int
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Channel:
    """A call leg in progress (`GET /channels`)."""

    uuid: str
    answered: bool
    direction: str
    destination: str
    other_leg: str
    authorizing_id: str
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Callflow:
    """A callflow: its numbers and (when fetched one by one) its flow."""

    callflow_id: str
    name: str
    numbers: tuple[str, ...]
    flow: Mapping[str, Any] | None = field(default=None, repr=False)  # may hold a secret URL: never printed


def gregorian(unix_seconds: float) -> int:
    """Unix time as Kazoo's Gregorian seconds."""
    return int(unix_seconds) + GREGORIAN_OFFSET


def pivot_flow(voice_url: str, method: str = "get") -> dict[str, Any]:
    """A callflow whose one module is `pivot` to `voice_url`, answered in Kazoo's JSON."""
    if method not in ("get", "post"):
        raise ValueError("method: get or post")
    return {"module": "pivot", "data": {"voice_url": voice_url, "method": method, "req_format": "kazoo"},
            "children": {}}


def printable(text: str, limit: int = 160) -> str:
    """`text` as it may go into an error or a log: printable, one line, at most `limit` characters."""
    cleaned = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


class KazooClient:
    """Kazoo's crossbar over HTTP. One per process: it pools connections and holds the token.

    `base_url` is crossbar's URL with `/v2`. Authenticates with `api_key` when given, else with
    `username`/`password`/`account_name`. `account_id` is the account the calls are made in;
    empty, the account of the credentials. Every request has a deadline (`timeout`) and an answer
    bound (`MAX_ANSWER_BYTES`). Errors: `SettingsError` (naming the settings, never a secret) when
    Kazoo refuses the credentials or a fresh token; `KazooRejectedError` for a 4xx; else
    `PlatformUnavailableError` (5xx, 408, 429, no answer, a broken body).
    """

    def __init__(
        self, base_url: str, *, account_id: str = "", username: str = "", password: str = "",
        account_name: str = "", api_key: str = "", timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not api_key and not (username and password):
            raise SettingsError(f"Kazoo needs {_API_KEY}, or {_CREDENTIALS}")
        if not api_key and not account_name:
            raise SettingsError("Kazoo user_auth needs IVR_KAZOO_ACCOUNT_NAME (or use IVR_KAZOO_API_KEY)")
        if account_id and not _ID.match(account_id):
            raise SettingsError("IVR_KAZOO_ACCOUNT_ID is not a Kazoo account id")
        self._api_key = api_key
        self._account_name = account_name
        # Kazoo takes the md5 of `user:password` (user_authentication.md); only the hash is kept.
        self._credentials = hashlib.md5(f"{username}:{password}".encode()).hexdigest() if not api_key else ""
        self._secrets = tuple(s for s in (password, api_key, self._credentials) if s)
        self._configured_account = account_id
        self._account = account_id
        self._timeout = timeout
        self._clock = clock
        self._http = peer_client(timeout, base_url=base_url.rstrip("/") + "/", transport=transport)
        self._token: str | None = None
        self._token_at = 0.0
        self._token_lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Any, **kwargs: Any) -> KazooClient:
        """A client from `ivr.settings.Settings` (the `kazoo_*` fields)."""
        if settings.kazoo_url is None:
            raise SettingsError("IVR_KAZOO_URL is not set")
        return cls(str(settings.kazoo_url), account_id=settings.kazoo_account_id,
                   username=settings.kazoo_username, password=settings.kazoo_password.get_secret_value(),
                   account_name=settings.kazoo_account_name, api_key=settings.kazoo_api_key.get_secret_value(),
                   **kwargs)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> KazooClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def auth_method(self) -> str:
        """`api_auth` or `user_auth`: which credentials the client uses."""
        return "api_auth" if self._api_key else "user_auth"

    @property
    def account_id(self) -> str:
        """The account the calls are made in ("" until the first authentication, if not configured)."""
        return self._account

    # -- authentication -------------------------------------------------------------------

    async def authenticate(self) -> str:
        """A fresh token, used by every later request; the account id."""
        stale = self._token
        async with self._token_lock:
            if self._token is stale:  # nobody renewed it meanwhile
                self._token = await self._new_token()
                self._token_at = self._clock()
        return self._account

    async def _new_token(self) -> str:
        name = self.auth_method
        data = ({"api_key": self._api_key} if self._api_key
                else {"credentials": self._credentials, "account_name": self._account_name})
        settings = _API_KEY if self._api_key else _CREDENTIALS
        try:
            response = await self._exchange(name, "PUT", name, json={"data": data})
        except NoAnswer as exc:
            raise PlatformUnavailableError(f"Kazoo {name}: {exc}") from None
        status = response.status_code
        if status in (400, 401, 403, 404):
            # No detail from the answer: it could echo what was sent.
            raise SettingsError(f"Kazoo refused the credentials ({name}, HTTP {status}): check {settings}")
        if not 200 <= status < 300:
            raise PlatformUnavailableError(self._refusal(name, response))
        body = self._decoded(name, response)
        token = body.get("auth_token")
        if not isinstance(token, str) or not token.strip():
            raise PlatformUnavailableError(f"Kazoo {name} answered without an auth_token")
        answered = body.get("data")
        account = answered.get("account_id") if isinstance(answered, dict) else None
        if not self._configured_account:
            if not isinstance(account, str) or not _ID.match(account):
                raise SettingsError(f"Kazoo {name} named no account: set IVR_KAZOO_ACCOUNT_ID")
            self._account = account
        return token.strip()

    # -- the API --------------------------------------------------------------------------

    async def quickcall(
        self, kind: str, endpoint_id: str, number: str, *, variables: Mapping[str, str] | None = None,
        cid_number: str | None = None, cid_name: str | None = None, auto_answer: bool | None = None,
        ring_seconds: int | None = None,
    ) -> Quickcall:
        """Ring a user's devices or a device (`kind` `users` or `devices`), then connect `number`.

        By GET: Kazoo answers 202 at once, before anything rings. `variables` (lower-case names)
        become custom application variables, as do the options: the CDRs carry them all.
        """
        if kind not in ("users", "devices"):
            raise ValueError("kind: users or devices")
        params: dict[str, str] = {}
        for name, value in dict(variables or {}).items():
            if not _VARIABLE_NAME.match(name) or name in _QUICKCALL_OPTIONS:
                raise ValueError(f"not a custom application variable name: {name!r}")
            params[name] = _checked_value(name, value)
        if cid_number is not None:
            params["cid-number"] = _checked_value("cid-number", cid_number)
        if cid_name is not None:
            params["cid-name"] = _checked_value("cid-name", cid_name)
        if auto_answer is not None:
            params["auto_answer"] = "true" if auto_answer else "false"
        if ring_seconds is not None:
            params["timeout"] = str(max(4, int(ring_seconds)))  # Kazoo ignores 3 and less
        dialled = quote(_checked_value("number", number), safe="+")
        path = f"{await self._path(kind, endpoint_id)}/quickcall/{dialled}"
        body = await self._call("quickcall", "GET", path, params=params, ok=(200, 202))
        data = body.get("data")
        data = data if isinstance(data, dict) else {}
        endpoints = data.get("endpoints")
        endpoints = endpoints if isinstance(endpoints, list) else []
        call_ids = tuple(str(e["outbound_call_id"]) for e in endpoints
                         if isinstance(e, dict) and isinstance(e.get("outbound_call_id"), str))
        cavs = data.get("custom_application_vars")
        shown = {str(k): str(v) for k, v in cavs.items()} if isinstance(cavs, dict) else dict(params)
        return Quickcall(call_ids, str(body.get("request_id") or ""), shown)

    async def create_cellphone(self, *, name: str, number: str, owner_id: str | None = None) -> str:
        """A `cellphone` device forwarding to `number` without "press 1 to accept"; its id."""
        data: dict[str, Any] = {
            "name": name, "device_type": "cellphone", "enabled": True,
            "call_forward": {"enabled": True, "number": number, "require_keypress": False,
                             "keep_caller_id": True, "substitute": True, "direct_calls_only": False},
        }
        if owner_id:
            data["owner_id"] = owner_id
        path = await self._path("devices")
        body = await self._call("devices/create", "PUT", path, json={"data": data}, ok=(200, 201))
        created = body.get("data")
        device_id = created.get("id") if isinstance(created, dict) else None
        if not isinstance(device_id, str) or not device_id:
            raise PlatformUnavailableError("Kazoo devices/create answered without the device id")
        return device_id

    async def device(self, device_id: str) -> dict[str, Any] | None:
        """A device's document; None when Kazoo does not know it."""
        return await self._document("devices/get", await self._path("devices", device_id))

    async def delete_device(self, device_id: str) -> bool:
        """Remove a device; False when it was already gone (404)."""
        try:
            await self._call("devices/delete", "DELETE", await self._path("devices", device_id))
        except KazooRejectedError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def callflows(self) -> list[Callflow]:
        """Every callflow of the account (listings carry no flow)."""
        rows = await self._listing("callflows/list", await self._path("callflows"), {})
        return [cf for row in rows if (cf := _callflow(row)) is not None]

    async def callflow(self, callflow_id: str) -> Callflow | None:
        doc = await self._document("callflows/get", await self._path("callflows", callflow_id))
        return None if doc is None else _callflow(doc)

    async def create_callflow(self, *, name: str, numbers: list[str], flow: Mapping[str, Any]) -> Callflow:
        body = await self._call("callflows/create", "PUT", await self._path("callflows"),
                                json={"data": {"name": name, "numbers": list(numbers), "flow": dict(flow)}},
                                ok=(200, 201))
        return self._made("callflows/create", body)

    async def update_callflow(
        self, callflow_id: str, *, name: str, numbers: list[str], flow: Mapping[str, Any],
    ) -> Callflow:
        """Replace a callflow's name, numbers and flow (POST: the whole document)."""
        body = await self._call("callflows/update", "POST", await self._path("callflows", callflow_id),
                                json={"data": {"name": name, "numbers": list(numbers), "flow": dict(flow)}})
        return self._made("callflows/update", body)

    async def cdrs(
        self, *, since: float, until: float | None = None, variables: Mapping[str, str] | None = None,
        filters: Mapping[str, str] | None = None, page_size: int = 50, max_pages: int = 20,
    ) -> list[CdrRow]:
        """CDR rows created between `since` and `until` (Unix seconds; `until` default now),
        those whose custom application variables match `variables`, newest first.

        The range is at most `MAX_CDR_RANGE` (Kazoo refuses more); `filters` adds raw `filter_*`
        parameters. At most `max_pages` pages are read.
        """
        until = time.time() if until is None else until
        if until < since or until - since > MAX_CDR_RANGE:
            raise ValueError(f"a CDR range is 0 to {MAX_CDR_RANGE} seconds")
        params: dict[str, str] = {"created_from": str(gregorian(since)), "created_to": str(gregorian(until) + 1),
                                  "page_size": str(page_size)}
        for name, value in (variables or {}).items():
            if not _VARIABLE_NAME.match(name):
                raise ValueError(f"not a custom application variable name: {name!r}")
            params[f"filter_custom_application_vars.{name}"] = _checked_value(name, value)
        params.update(dict(filters or {}))
        rows = await self._listing("cdrs/list", await self._path("cdrs"), params, max_pages=max_pages)
        return [row for raw in rows if (row := _cdr_row(raw)) is not None]

    async def cdr(self, cdr_id: str) -> dict[str, Any] | None:
        """One CDR in full (custom application variables included); None when unknown."""
        return await self._document("cdrs/get", await self._path("cdrs", cdr_id))

    async def channels(self) -> list[Channel]:
        """The account's call legs in progress."""
        rows = await self._listing("channels", await self._path("channels"), {}, max_pages=1)
        return [ch for row in rows if (ch := _channel(row)) is not None]

    # -- the machinery --------------------------------------------------------------------

    async def _path(self, *parts: str) -> str:
        """`accounts/{account}/...`, each id checked: an id is never a way to another path."""
        for part in parts[1:]:
            if not _ID.match(part):
                raise ValueError(f"not a Kazoo id: {printable(part, 40)!r}")
        if not self._account and self._token is None:
            await self.authenticate()  # the account of the credentials
        if not self._account:
            raise SettingsError("no Kazoo account: set IVR_KAZOO_ACCOUNT_ID")
        return "/".join(("accounts", self._account, *parts))

    async def _listing(self, name: str, path: str, params: dict[str, str], *, max_pages: int = 20) -> list[Any]:
        """A list's rows, following `next_start_key` for at most `max_pages` pages."""
        rows: list[Any] = []
        for _ in range(max_pages):
            body = await self._call(name, "GET", path, params=params, ok=(200, 204))
            data = body.get("data", [])
            if not isinstance(data, list):
                raise PlatformUnavailableError(f"Kazoo {name} answered without a list")
            rows.extend(data)
            next_key = body.get("next_start_key")
            if not isinstance(next_key, str) or not next_key or not data:
                return rows
            params = {**params, "start_key": next_key}
        log.warning("kazoo.pages_cut", call=name, pages=max_pages)
        return rows

    async def _document(self, name: str, path: str) -> dict[str, Any] | None:
        try:
            body = await self._call(name, "GET", path)
        except KazooRejectedError as exc:
            if exc.status == 404:
                return None
            raise
        data = body.get("data")
        if not isinstance(data, dict):
            raise PlatformUnavailableError(f"Kazoo {name} answered without a document")
        return data

    def _made(self, name: str, body: dict[str, Any]) -> Callflow:
        made = _callflow(body.get("data"))
        if made is None:
            raise PlatformUnavailableError(f"Kazoo {name} answered without the callflow")
        return made

    async def _call(
        self, name: str, verb: str, path: str, *, ok: tuple[int, ...] = (200,), **kwargs: Any,
    ) -> dict[str, Any]:
        """The answer's envelope (a dict; `{}` for a 204), or the error its status means."""
        try:
            response = await self._request(name, verb, path, **kwargs)
        except NoAnswer as exc:
            raise PlatformUnavailableError(f"Kazoo {name}: {exc}") from None
        if response.status_code == 204 and 204 in ok:
            return {}
        if response.status_code not in ok:
            raise self._error(name, response)
        body = self._decoded(name, response)
        if body.get("status") not in (None, "success"):
            raise PlatformUnavailableError(self._refusal(name, response))
        return body

    async def _request(self, name: str, verb: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request with the token; on a 401 a new token, once. Never a 401 back: SettingsError."""
        if self._token is None or self._clock() - self._token_at > TOKEN_RENEW_AFTER:
            await self.authenticate()
        renewed = False
        while True:
            token = self._token
            response = await self._exchange(name, verb, path, headers={"X-Auth-Token": token or ""}, **kwargs)
            if response.status_code != 401:
                return response
            if renewed:
                settings = _API_KEY if self._api_key else _CREDENTIALS
                raise SettingsError(f"Kazoo refused a fresh token for {name} (HTTP 401): check {settings}")
            renewed = True
            log.info("kazoo.token_refused", call=name)
            if self._token is token:
                await self.authenticate()

    async def _exchange(self, name: str, verb: str, path: str, **kwargs: Any) -> httpx.Response:
        """One HTTP exchange within the deadline, its body read up to `MAX_ANSWER_BYTES`."""
        request = self._http.build_request(verb, path, **kwargs)
        return await exchange(self._http, request, timeout=self._timeout, log=log, event="kazoo.request", name=name)

    def _decoded(self, name: str, response: httpx.Response) -> dict[str, Any]:
        try:
            body = json.loads(response.content)
        except ValueError:
            raise PlatformUnavailableError(f"Kazoo {name} answered with a body that is not JSON") from None
        if not isinstance(body, dict):
            raise PlatformUnavailableError(f"Kazoo {name} answered without an envelope")
        return body

    def _error(self, name: str, response: httpx.Response) -> Exception:
        """The error a non-2xx answer means: 4xx about the request, or Kazoo not available."""
        status = response.status_code
        text = self._refusal(name, response)
        if 400 <= status < 500 and status not in _UNAVAILABLE_4XX:
            error, message = _error_fields(response)
            if status == 403:
                text += " (check IVR_KAZOO_ACCOUNT_ID and the user's rights)"
            return KazooRejectedError(text, status, self._scrub(error, 40), self._scrub(message, 120))
        return PlatformUnavailableError(text)

    def _refusal(self, name: str, response: httpx.Response) -> str:
        """Kazoo's error envelope in one bounded, printable line with no secret in it."""
        error, message = _error_fields(response)
        said = " ".join(part for part in (self._scrub(error, 40) + ":" if error else "",
                                          self._scrub(_validation_keys(response), 120),
                                          self._scrub(message, 120)) if part)
        text = f"Kazoo {name} answered HTTP {response.status_code}"
        return f"{text}: {said}" if said else text

    def _scrub(self, text: str, limit: int) -> str:
        """`text` without the secrets this client knows or a URL's `secret=`, then bounded:
        scrubbed whole first, so that no cut leaves part of a secret."""
        for secret in (*self._secrets, self._token or ""):
            if len(secret) >= 8:
                text = text.replace(secret, "[REDACTED]")
        return printable(_SECRET_IN_URL.sub(r"\1[REDACTED]", text), limit)


def _checked_value(name: str, value: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 256 or not value.isprintable():
        raise ValueError(f"{name}: 1 to 256 printable characters")
    return value


def _error_fields(response: httpx.Response) -> tuple[str, str]:
    """Kazoo's `error` and `message`, not yet scrubbed; empty when the body is not its envelope."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    error, message = body.get("error"), body.get("message")
    return (str(error)[:4096] if isinstance(error, (str, int)) else "",
            message[:4096] if isinstance(message, str) else "")


def _validation_keys(response: httpx.Response) -> str:
    """The fields and rules of a validation error (`{"field": {"rule": {...}}}`): keys only, never
    values, which could echo what was sent."""
    try:
        data = json.loads(response.content).get("data")
    except (ValueError, AttributeError):
        return ""
    if not isinstance(data, dict):
        return ""
    pairs = [f"{str(k)[:60]}/{str(rule)[:30]}" for k, v in list(data.items())[:5]
             if isinstance(v, dict) for rule in list(v)[:2]]
    return f"({', '.join(pairs)})" if pairs else ""


def _as_int(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return 0


def _callflow(doc: object) -> Callflow | None:
    if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
        return None
    numbers = doc.get("numbers")
    numbers = numbers if isinstance(numbers, list) else []
    flow = doc.get("flow") if isinstance(doc.get("flow"), dict) else None
    return Callflow(doc["id"], str(doc.get("name") or ""), tuple(str(n) for n in numbers), flow)


def _cdr_row(raw: object) -> CdrRow | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        return None
    return CdrRow(raw["id"], str(raw.get("call_id") or ""), str(raw.get("hangup_cause") or ""),
                  _as_int(raw.get("billing_seconds")), _as_int(raw.get("duration_seconds")),
                  str(raw.get("direction") or raw.get("call_direction") or ""),
                  str(raw.get("other_leg_call_id") or ""), _as_int(raw.get("timestamp")), raw)


def _channel(raw: object) -> Channel | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("uuid"), str):
        return None
    return Channel(raw["uuid"], raw.get("answered") is True, str(raw.get("direction") or ""),
                   str(raw.get("destination") or ""), str(raw.get("other_leg") or ""),
                   str(raw.get("authorizing_id") or ""), raw)
