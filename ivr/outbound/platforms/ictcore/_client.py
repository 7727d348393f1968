"""ICTCore's REST API, the part a `notice` needs: one pooled httpx client, a bearer token, deadlines.

Checked against ICTCore's source (github.com/ictinnovations/ictcore at 4e469b7), where its guide
is wrong or silent:

* `core/Api/Authenticate.php`: `POST /authenticate` with `username` and `password` answers the
  user object with `token` (and `access_token`); a wrong password is a 401.
* `core/lib/Http.php`: `Authorization: Bearer <token>`, else HTTP Basic with the same credentials.
* `core/Api/ContactApi.php`, `ProgramApi.php`, `TransmissionApi.php`, `core/Core.php::send`: every
  create answers the new id as a bare JSON number (the guide shows `{"contact_id": 1}`...); both
  are accepted here.
* `core/Contact.php::search`: `GET /contacts?phone=N` matches `phone LIKE '%N'` (a suffix), so
  a hit is checked for the exact number.
* `core/Api/TransmissionApi.php::status`: a bare JSON string (the guide: `{"status": ...}`).
* `core/Transmission.php`: statuses `pending`, `pending_retry`, `initializing`, `processing`,
  `done`, `completed`, `failed`, `invalid`; `send()` answers 423 for a transmission `invalid`,
  `processing` or `completed`, and marks it `processing` before it dials.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import httpx

from ivr.errors import PlatformRejectedError, PlatformUnavailableError, SettingsError
from ivr.http_answers import MAX_ANSWER_BYTES, NoAnswer, exchange, peer_client
from ivr.logging import get_logger

__all__ = ["MAX_ANSWER_BYTES", "IctCoreClient", "SendAnswer", "Spool", "digits_only", "printable"]

log = get_logger("ivr.outbound.ictcore")

"""The longest answer read: ICTCore's answers are small JSON; a larger one is a broken server."""
_REJECTED = frozenset({403, 404, 412})
"""Refused for good (permission, unknown, invalid data): retrying cannot help."""
_CREDENTIALS = "IVR_ICTCORE_USERNAME / IVR_ICTCORE_PASSWORD"


@dataclass(frozen=True)
class SendAnswer:
    """How ICTCore answered `POST /transmissions/{id}/send`, when it did not refuse it.

    `spool_id` is None when the answer named no spool: an empty 200 (one ICTCore branch does
    that, and may still have queued the call), an error status (`status`), or no answer at all
    (`status` None: the request may or may not have reached ICTCore).
    """

    spool_id: int | None
    status: int | None
    note: str


@dataclass(frozen=True)
class Spool:
    """One try of a transmission, from `GET /transmissions/{id}/detail`."""

    spool_id: int
    status: str
    response: str


def digits_only(number: str) -> str:
    """A number as ICTCore takes it: digits only, no `+`."""
    return "".join(ch for ch in number if ch.isdigit())


class IctCoreClient:
    """ICTCore over HTTP. One per process: it pools connections and holds the token.

    Every request has a deadline (`timeout`). Errors are the `PlatformError` family:
    `PlatformRejectedError` for 403, 404 and 412, `PlatformUnavailableError` for anything else
    that went wrong, and `SettingsError` (naming the settings, never the password) when ICTCore
    refuses the credentials, or refuses a fresh token.
    """

    def __init__(
        self, base_url: str, username: str, password: str, *, timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._username, self._password = username, password
        self._timeout = timeout
        self._http = peer_client(timeout, base_url=base_url.rstrip("/") + "/", transport=transport)
        self._token: str | None = None
        self._token_lock = asyncio.Lock()
        self._contacts: dict[str, int] = {}

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- the API --------------------------------------------------------------------------

    async def authenticate(self) -> None:
        """A fresh token, used by every later request."""
        stale = self._token
        async with self._token_lock:
            if self._token is stale:  # nobody renewed it meanwhile
                self._token = await self._new_token()

    async def contact_for(self, phone: str) -> int:
        """The contact of `phone` (digits only): one already made (cached, or found), else a new one."""
        cached = self._contacts.get(phone)
        if cached is not None:
            return cached
        body = await self._json("contacts", "GET", "contacts", params={"phone": phone})
        found = _contact_with(body, phone)
        if found is None:
            found = await self._create("contacts", "contacts", "contact_id",
                                       {"first_name": "Key holder", "phone": phone})
        self._contacts[phone] = found
        return found

    def forget_contact(self, phone: str) -> None:
        """Drop the cached contact of `phone` (ICTCore refused a transmission to it: maybe deleted)."""
        self._contacts.pop(phone, None)

    async def create_tts_program(self, name: str, text: str) -> int:
        return await self._create("programs/voicetts", "programs/voicetts", "program_id", {"name": name, "text": text})

    async def create_transmission(self, title: str, contact_id: int, program_id: int) -> int:
        body = {"title": title, "contact_id": contact_id, "program_id": program_id, "direction": "outbound",
                "try_allowed": 1}  # ICTCore retries by itself above 1: retries are ours
        return await self._create("transmissions", "transmissions", "transmission_id", body)

    async def send(self, transmission_id: int) -> SendAnswer:
        """`POST /transmissions/{id}/send`, once: never repeated here, whatever happens.

        Raises `PlatformRejectedError` (403, 404, 412) and `SettingsError` only when ICTCore
        refused the request, so nothing was dialled; `PlatformUnavailableError` only when the
        request never left (no connection). Anything else is a `SendAnswer`: the call may be
        under way, and the caller finds out from the transmission's status.
        """
        name = "transmissions/send"
        try:
            response = await self._request(name, "POST", f"transmissions/{transmission_id}/send")
        except NoAnswer as exc:
            if not exc.reached:
                raise PlatformUnavailableError(f"ICTCore {name}: {exc}") from None
            return SendAnswer(None, None, str(exc))
        status = response.status_code
        if status in _REJECTED:
            raise PlatformRejectedError(_refusal(name, response))
        if status != 200:
            return SendAnswer(None, status, _refusal(name, response))
        spool_id = _id_in(response.content, "spool_id")
        # An empty 200 names no spool, yet the call may be queued: the caller must not send again.
        return SendAnswer(spool_id, 200, "" if spool_id is not None else "a 200 answer without a spool id")

    async def status(self, transmission_id: int) -> str | None:
        """The transmission's status, lower case; None when ICTCore does not know it (404)."""
        name = "transmissions/status"
        try:
            response = await self._request(name, "GET", f"transmissions/{transmission_id}/status")
        except NoAnswer as exc:
            raise PlatformUnavailableError(f"ICTCore {name}: {exc}") from None
        if response.status_code == 404:
            return None
        body = _decoded(name, _checked(name, response))
        if isinstance(body, dict):
            body = body.get("status")
        if not isinstance(body, str) or not body.strip():
            raise PlatformUnavailableError(f"ICTCore {name} answered without a status")
        return body.strip().lower()

    async def detail(self, transmission_id: int) -> list[Spool]:
        """The transmission's tries, oldest first."""
        body = await self._json("transmissions/detail", "GET", f"transmissions/{transmission_id}/detail")
        if isinstance(body, dict):  # one spool, or PHP's associative array of them
            body = [body] if "spool_id" in body else list(body.values())
        if not isinstance(body, list):
            raise PlatformUnavailableError("ICTCore transmissions/detail answered without a list of spools")
        spools = []
        for item in body:
            if isinstance(item, dict) and (spool_id := _as_id(item.get("spool_id"))) is not None:
                spools.append(Spool(spool_id, str(item.get("status") or "").lower(), str(item.get("response") or "")))
        return sorted(spools, key=lambda s: s.spool_id)

    # -- the machinery --------------------------------------------------------------------

    async def _create(self, name: str, path: str, key: str, body: dict[str, Any]) -> int:
        response = await self._answered(name, "POST", path, json=body)
        new_id = _id_in(response.content, key)
        if new_id is None:
            # Only send dials, so nothing was placed yet: a create that answered 200 with no id is
            # a defect of that ICTCore branch, and trying again later is safe (an orphan contact or
            # program at worst). So unavailable (retried), not rejected (failed for good).
            raise PlatformUnavailableError(f"ICTCore {name} answered 200 without the new id")
        return new_id

    async def _json(self, name: str, verb: str, path: str, **kwargs: Any) -> Any:
        return _decoded(name, await self._answered(name, verb, path, **kwargs))

    async def _answered(self, name: str, verb: str, path: str, **kwargs: Any) -> httpx.Response:
        """A 200 answer, or the error its status means."""
        try:
            response = await self._request(name, verb, path, **kwargs)
        except NoAnswer as exc:
            raise PlatformUnavailableError(f"ICTCore {name}: {exc}") from None
        return _checked(name, response)

    async def _request(self, name: str, verb: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request with the token; on a 401 a new token, once. Never a 401 back: SettingsError."""
        if self._token is None:
            await self.authenticate()
        renewed = False
        while True:
            token = self._token
            response = await self._exchange(name, verb, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
            if response.status_code != 401:
                return response
            if renewed:
                raise SettingsError(f"ICTCore refused a fresh token for {name} (HTTP 401): check {_CREDENTIALS}")
            renewed = True
            if self._token is token:
                await self.authenticate()

    async def _new_token(self) -> str:
        credentials = {"username": self._username, "password": self._password}
        try:
            response = await self._exchange("authenticate", "POST", "authenticate", json=credentials)
        except NoAnswer as exc:
            raise PlatformUnavailableError(f"ICTCore authenticate: {exc}") from None
        if response.status_code in (401, 403):
            raise SettingsError(f"ICTCore refused the credentials (HTTP {response.status_code}): check {_CREDENTIALS}")
        if response.status_code != 200:
            raise PlatformUnavailableError(_refusal("authenticate", response))
        try:
            body = json.loads(response.content)
        except ValueError:
            body = None
        token = (body.get("token") or body.get("access_token")) if isinstance(body, dict) else body
        if not isinstance(token, str) or not token.strip():
            raise PlatformUnavailableError("ICTCore authenticate answered without a token")
        return token.strip()

    async def _exchange(self, name: str, verb: str, path: str, **kwargs: Any) -> httpx.Response:
        """One HTTP exchange within the deadline, its body read up to `MAX_ANSWER_BYTES`."""
        request = self._http.build_request(verb, path, **kwargs)
        return await exchange(self._http, request, timeout=self._timeout, log=log, event="ictcore.request", name=name)


def _checked(name: str, response: httpx.Response) -> httpx.Response:
    """`response` when it is a 200, else the error its status means."""
    if response.status_code == 200:
        return response
    if response.status_code in _REJECTED:
        raise PlatformRejectedError(_refusal(name, response))
    raise PlatformUnavailableError(_refusal(name, response))


def _decoded(name: str, response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        raise PlatformUnavailableError(f"ICTCore {name} answered with a body that is not JSON") from None


def _as_id(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str) and value.strip().isdigit() and int(value) > 0:
        return int(value)
    return None


def _id_in(content: bytes, key: str) -> int | None:
    """The new id of a create's answer: a bare number (`12`, ICTCore's source) or `{key: 12}` (its guide)."""
    try:
        body = json.loads(content) if content.strip() else None
    except ValueError:
        return None
    if isinstance(body, dict):
        body = body.get(key)
    return _as_id(body)


def _contact_with(body: object, phone: str) -> int | None:
    """The first contact in a `GET /contacts` answer whose number is `phone` exactly (ICTCore's
    filter matches a suffix)."""
    rows = body.values() if isinstance(body, dict) else body if isinstance(body, list) else []
    for row in rows:
        if isinstance(row, dict) and digits_only(str(row.get("phone") or "")) == phone:
            found = _as_id(row.get("contact_id"))
            if found is not None:
                return found
    return None


def _refusal(name: str, response: httpx.Response) -> str:
    """ICTCore's error in one bounded line: `{"error": {"code", "message"}}` when it sent one."""
    message = ""
    try:
        body = json.loads(response.content)
        error = body.get("error") if isinstance(body, dict) else None
        message = str(error.get("message", "")) if isinstance(error, dict) else str(error or "")
    except ValueError:
        pass
    text = f"ICTCore {name} answered HTTP {response.status_code}"
    return f"{text}: {printable(message)}" if message.strip() else text


def printable(text: str, limit: int = 120) -> str:
    """`text` as it may go into a reason or a log: printable, one line, at most `limit` characters."""
    cleaned = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"
