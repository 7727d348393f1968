"""Codelocks Connect over HTTP: the NetCode of a lock, and the durations a lock model takes.

The guide (version 1): `x-api-key` on every request; NetCode calls under `/n/1/`, utility calls
under `/u/1/`, each counted against its own monthly quota; 400 "invalid data supplied", 403
"missing or invalid authentication key", 404 "missing required parameter", 500, and 502
"tertiary endpoint error". An API key with usage plans and monthly quotas is how AWS API Gateway
meters APIs, and API Gateway answers a used-up quota with "Limit Exceeded" (429): so a 403 or a
429 whose message speaks of a quota or a limit exceeded is the quota, any other 403 the key.

What the client never does: put the API key or a NetCode into a log line, an exception or a URL.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
from pydantic import ValidationError

from ivr.backends.codelocks._models import DurationInfo, LockModel, NetCodeAnswer
from ivr.errors import (
    NetCodeKeyRefusedError,
    NetCodeRejectedError,
    NetCodeUnavailableError,
    QuotaExhaustedError,
    SettingsError,
)
from ivr.http_answers import NoAnswer, exchange, peer_client
from ivr.logging import get_logger

__all__ = ["CodelocksClient"]

log = get_logger("ivr.backends.codelocks")

_PATH_PART = re.compile(r"^[0-9A-Za-z]{1,64}$")
_START = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}$")
_QUOTA_WORDS = re.compile(r"(?i)quota|limit exceeded|usage limit")
_REJECTED = frozenset({400, 404, 405, 409, 410, 413, 414, 415, 422})
"""4xx statuses that refuse these parameters: asking again cannot help."""
_API_KEY = "IVR_CODELOCKS_API_KEY"


class CodelocksClient:
    """Codelocks Connect. One per process: it pools connections.

    `url` is the API root (`https://api-connect.codelocks.io`; the `/n/1/` and `/u/1/` paths are
    relative to it). `timeout` bounds every request; a call may bound itself tighter with its
    own `timeout` (a caller on the phone). `transport` is for the tests that swap it.

    Errors: `NetCodeRejectedError` (400, 404 and other refusals of the parameters, or a 200 whose
    NetCode says ERROR), `QuotaExhaustedError` (a 403 or 429 about the quota),
    `NetCodeKeyRefusedError` (any other 403: a `SettingsError` naming IVR_CODELOCKS_API_KEY),
    `NetCodeUnavailableError` (no answer in time, 5xx, 429, a body that is not the model).
    """

    def __init__(
        self, url: str, api_key: str, *, timeout: float = 5.0, transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise SettingsError("IVR_CODELOCKS_URL must be an http(s) URL")
        if not api_key or not api_key.isprintable() or len(api_key) > 256:
            raise SettingsError(f"{_API_KEY} is not set, or not an API key")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._api_key = api_key
        self._timeout = timeout
        self._base = url.rstrip("/") + "/"
        self._http = peer_client(timeout, transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> CodelocksClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def netcode(
        self, lock_id: str, *, model: LockModel, identifier: str, start: str, duration: int,
        timeout: float | None = None,
    ) -> NetCodeAnswer:
        """`GET /n/1/netcode/{lock_id}`: the NetCode from `start` (local to the lock,
        `YYYY-MM-DD HH:MM`) for the duration id `duration`. One request, never repeated here:
        each counts against the month's NetCode quota."""
        if not _PATH_PART.match(lock_id) or not _PATH_PART.match(identifier):
            raise ValueError("lock id and identifier: 1 to 64 letters and digits")
        if not _START.match(start):
            raise ValueError("start: YYYY-MM-DD HH:MM")
        params = {"start": start, "duration": str(int(duration)), "lockmodel": model, "identifier": identifier}
        body = await self._get("netcode", f"n/1/netcode/{lock_id}", params, timeout)
        if not isinstance(body, dict):
            raise NetCodeUnavailableError("Codelocks netcode answered without an object")
        said = body.get("ActualNetcode", body.get("ActualNetCode", body.get("netcode")))
        if isinstance(said, str) and said.strip().upper() == "ERROR":
            # A 200 that refuses (the PHP wrapper tests for `"netcode": "ERROR"` too).
            raise NetCodeRejectedError("Codelocks netcode answered ERROR for these parameters", 200, "ERROR")
        try:
            return NetCodeAnswer.model_validate(body)
        except ValidationError:
            raise NetCodeUnavailableError("Codelocks netcode answered without a NetCode of digits") from None

    async def durations(self, model: LockModel, *, timeout: float | None = None) -> list[DurationInfo]:
        """`GET /u/1/durations?lockmodel=...&operation=DURATIONS`: the duration ids `model` takes.

        A utility call (its own quota): what `ivr netcode` can show, and a check that the URL
        and the key work without spending a NetCode call.
        """
        body = await self._get("durations", "u/1/durations", {"lockmodel": model, "operation": "DURATIONS"}, timeout)
        if not isinstance(body, list) or len(body) > 1000:
            raise NetCodeUnavailableError("Codelocks durations answered without a list")
        try:
            return [DurationInfo.model_validate(row) for row in body]
        except ValidationError:
            raise NetCodeUnavailableError("Codelocks durations answered rows that are not durations") from None

    async def _get(self, name: str, path: str, params: dict[str, str], timeout: float | None) -> Any:
        deadline = self._timeout if timeout is None else min(timeout, self._timeout)
        request = self._http.build_request(
            "GET", self._base + path, params=params,
            headers={"x-api-key": self._api_key},
            timeout=httpx.Timeout(deadline),
        )
        try:
            response = await exchange(self._http, request, timeout=deadline, log=log, event="codelocks.request",
                                      name=name)
        except NoAnswer as exc:
            raise NetCodeUnavailableError(f"Codelocks {name}: {exc}") from None
        status = response.status_code
        if status != 200:
            raise self._error(name, response)
        try:
            return json.loads(response.content)
        except ValueError:
            raise NetCodeUnavailableError(f"Codelocks {name} answered with a body that is not JSON") from None

    def _error(self, name: str, response: httpx.Response) -> Exception:
        status = response.status_code
        message = self._message(response)
        text = f"Codelocks {name} answered HTTP {status}" + (f": {message}" if message else "")
        if status in (403, 429) and _QUOTA_WORDS.search(message):
            return QuotaExhaustedError(text)
        if status == 403:
            return NetCodeKeyRefusedError(f"{text} (check {_API_KEY})", status, message)
        if status in _REJECTED:
            return NetCodeRejectedError(text, status, message)
        return NetCodeUnavailableError(text)

    def _message(self, response: httpx.Response) -> str:
        """Codelocks' `message` (or `Message`, `error`), printable, bounded, without the key."""
        try:
            body = json.loads(response.content)
        except ValueError:
            return ""
        said = next((body[k] for k in ("message", "Message", "error") if isinstance(body, dict)
                     and isinstance(body.get(k), str)), "")
        said = said[:4096].replace(self._api_key, "[REDACTED]")
        cleaned = " ".join("".join(ch if ch.isprintable() else " " for ch in said).split())
        return cleaned[:120]
