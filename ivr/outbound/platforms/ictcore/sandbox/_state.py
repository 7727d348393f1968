"""What the ICTCore sandbox keeps and answers, apart from HTTP: users, tokens, contacts,
programs, transmissions and their spools, and the fault knobs."""

from __future__ import annotations

import asyncio
import hmac
import itertools
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ivr.sandbox_kit import Refused, SandboxFaults

SANDBOX_USERNAME = "keybox"
SANDBOX_PASSWORD = "sandbox-password"

BUSY_NUMBER = "5550101"
NO_ANSWER_NUMBER = "5550102"
FAILED_NUMBER = "5550104"
"""Numbers (or numbers ending so) whose calls end busy, unanswered, or failed ("invalid number");
every other number's call completes."""


class IctCoreKnobs(BaseModel):
    """Faults and quirks tests and QA set at start or at run time (`PATCH /sandbox/knobs`)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    token_lifetime: float = Field(3600.0, gt=0, description="seconds a new token lives")
    flip_ids: bool = Field(False, description="creates answer ids the other way round: by default contacts "
                                              "and transmissions a bare number, programs and sends an object")
    status_as_object: bool = Field(False, description='status as {"status": ...} (the guide), not a bare string')
    call_seconds: float = Field(0.05, ge=0, le=3600, description="seconds a call stays `processing`")
    fail_next: list[int] = Field(default_factory=list, description="the next requests answer these statuses")
    empty_create_body: bool = Field(False, description="contact, program and transmission creates answer an "
                                                       "empty 200 (the new thing is made all the same)")
    empty_send_body: bool = Field(False, description="send answers an empty 200 (the call starts all the same)")
    latency: float = Field(0.0, ge=0, le=60, description="seconds added before every answer")
    down: bool = Field(False, description="every connection is closed without an answer")



@dataclass
class _Transmission:
    transmission_id: int
    title: str
    contact_id: int
    program_id: int
    direction: str
    try_allowed: int
    status: str = "pending"
    response: str = ""
    spools: list[dict[str, Any]] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {"transmission_id": self.transmission_id, "title": self.title, "contact_id": self.contact_id,
                "program_id": self.program_id, "direction": self.direction, "try_allowed": self.try_allowed,
                "status": self.status, "response": self.response, "service_flag": 1}


class IctCoreSandbox(SandboxFaults[IctCoreKnobs]):
    """The documented subset of ICTCore's API, in memory; `create_app` serves it.

    `sends` counts the send requests that reached a transmission (refused ones too) and `calls`
    the calls started: a test asserts "exactly one call" on them.
    """

    def __init__(
        self, knobs: IctCoreKnobs | None = None, *, users: dict[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.knobs = (knobs or IctCoreKnobs()).model_copy()
        self.clock = clock
        self._users = users or {SANDBOX_USERNAME: SANDBOX_PASSWORD}
        self._tokens: dict[str, float] = {}
        self._ids = {kind: itertools.count(start) for kind, start in
                     (("contact", 101), ("program", 201), ("transmission", 301), ("spool", 401))}
        self.contacts: dict[int, dict[str, Any]] = {}
        self.programs: dict[int, dict[str, Any]] = {}
        self.transmissions: dict[int, _Transmission] = {}
        self.sends: Counter[int] = Counter()
        self.calls: Counter[int] = Counter()
        self.requests: Counter[str] = Counter()
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.stopping = asyncio.Event()
        self._timers: set[asyncio.TimerHandle] = set()

    # -- faults and administration ---------------------------------------------------------

    def revoke_tokens(self) -> None:
        self._tokens.clear()

    def close(self) -> None:
        """Calls in progress stay as they are; no timer fires after the sandbox stops."""
        self.stopping.set()
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    def id_answer(self, kind: str, value: int) -> Any:
        """A create's answer: a bare number or `{"<kind>_id": n}`, per kind and the `flip_ids` knob."""
        bare = (kind in ("contact", "transmission")) != self.knobs.flip_ids
        return value if bare else {f"{kind}_id": value}

    # -- authentication ---------------------------------------------------------------------

    def authenticate(self, username: str, password: str) -> str | None:
        if not self.check_password(username, password):
            return None
        token = secrets.token_urlsafe(24)
        self._tokens[token] = self.clock() + self.knobs.token_lifetime
        return token

    def check_password(self, username: str, password: str) -> bool:
        expected = self._users.get(username)
        return expected is not None and hmac.compare_digest(expected.encode(), password.encode())

    def check_token(self, token: str) -> bool:
        expires = self._tokens.get(token)
        return expires is not None and self.clock() < expires

    # -- the API ------------------------------------------------------------------------------

    def create_contact(self, data: dict[str, Any]) -> int:
        phone = str(data.get("phone") or "")
        if not phone.isdigit():
            raise Refused(412, "phone is missing or not a number")
        contact_id = next(self._ids["contact"])
        self.contacts[contact_id] = {"contact_id": contact_id, "first_name": str(data.get("first_name") or ""),
                                     "last_name": "", "phone": phone, "email": None}
        return contact_id

    def find_contacts(self, query: dict[str, str]) -> list[dict[str, Any]]:
        phone = query.get("phone")
        # ICTCore's filter is `phone LIKE '%<phone>'`: a suffix (core/Contact.php::search).
        return [dict(c) for c in self.contacts.values() if phone is None or c["phone"].endswith(phone)]

    def create_program(self, data: dict[str, Any]) -> int:
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            raise Refused(412, "text is missing")
        program_id = next(self._ids["program"])
        self.programs[program_id] = {"program_id": program_id, "name": str(data.get("name") or ""),
                                     "type": "voicetts", "text": text}
        return program_id

    def create_transmission(self, data: dict[str, Any]) -> int:
        contact_id, program_id = _int(data.get("contact_id")), _int(data.get("program_id"))
        if program_id is None or program_id not in self.programs:
            raise Refused(412, "program_id is missing")
        if contact_id is None or contact_id not in self.contacts:
            raise Refused(412, "contact is missing")
        transmission_id = next(self._ids["transmission"])
        self.transmissions[transmission_id] = _Transmission(
            transmission_id, str(data.get("title") or ""), contact_id, program_id,
            str(data.get("direction") or "outbound"), _int(data.get("try_allowed")) or 1)
        return transmission_id

    def transmission(self, transmission_id: int) -> _Transmission:
        found = self.transmissions.get(transmission_id)
        if found is None:
            raise Refused(404, "Transmission not found")
        return found

    def send(self, transmission_id: int) -> int:
        """Start the transmission's call (core/Transmission.php::send's rules); its spool id."""
        item = self.transmission(transmission_id)
        self.sends[transmission_id] += 1
        if item.status == "invalid":
            raise Refused(423, "Invalid transmission, unable to process")
        if item.status == "processing":
            raise Refused(423, "Transmission already in process")
        if item.status == "completed":
            raise Refused(423, "Transmission completed, request denied")
        self.calls[transmission_id] += 1
        item.status = "processing"
        spool_id = next(self._ids["spool"])
        now = int(self.clock())
        spool = {"spool_id": spool_id, "transmission_id": transmission_id, "status": "started", "response": None,
                 "time_spool": now, "time_start": now, "time_connect": None, "time_end": None}
        item.spools.append(spool)
        loop = asyncio.get_running_loop()
        timer: asyncio.TimerHandle | None = None

        def finish() -> None:
            if timer is not None:
                self._timers.discard(timer)
            self._finish(item, spool)

        timer = loop.call_later(self.knobs.call_seconds, finish)
        self._timers.add(timer)
        return spool_id

    def _finish(self, item: _Transmission, spool: dict[str, Any]) -> None:
        phone = self.contacts[item.contact_id]["phone"]
        spool["time_end"] = int(self.clock())
        response = ("busy" if phone.endswith(BUSY_NUMBER) else "no answer" if phone.endswith(NO_ANSWER_NUMBER)
                    else "invalid number" if phone.endswith(FAILED_NUMBER) else None)
        if response is None:
            spool["status"] = item.status = "completed"
            spool["time_connect"] = spool["time_start"]
        else:
            spool["status"] = item.status = "failed"
            spool["response"] = item.response = response

    def status(self, transmission_id: int) -> Any:
        status = self.transmission(transmission_id).status
        return {"status": status} if self.knobs.status_as_object else status

    def detail(self, transmission_id: int) -> list[dict[str, Any]]:
        return [dict(s) for s in self.transmission(transmission_id).spools]


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None
