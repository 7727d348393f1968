"""What the Kazoo sandbox keeps and answers, apart from HTTP: one account, its user and devices,
tokens, callflows, quickcalls and their legs, CDRs, and the fault knobs.

Quickcall legs, as Kazoo places them (`cb_quickcall.erl`): each endpoint of the user or device
rings first (call id `<36 hex>-quickcall`); once one answers, the number is connected. A number
of a callflow runs that callflow on the answered leg (no second leg: the hook below); any other
number is a second, outbound leg bridged to the first. Outcomes go by number as in the other
sandboxes: `5550101` busy (`USER_BUSY`), `5550102` no answer (`NO_ANSWER`), `5550104` failed
(`UNALLOCATED_NUMBER`), any other answered, for `call_seconds`, then `NORMAL_CLEARING`. The
agent's SIP device answers unless the `agent_answers` knob is off. A `cellphone` device rings its
`call_forward.number`; one left with `require_keypress` (Kazoo's default) is never confirmed by
the sandbox's callee and ends `NO_ANSWER`. Every leg leaves a CDR carrying the quickcall's
custom application variables.

Which legs carry the variables, and the hangup cause of the first leg when the second fails, are
the sandbox's model, not checked against a live Kazoo.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ivr import sandbox_kit
from ivr.logging import get_logger
from ivr.outbound.platforms.kazoo._client import GREGORIAN_OFFSET, JOB_VARIABLE
from ivr.sandbox_kit import SandboxFaults

log = get_logger("ivr.outbound.kazoo.sandbox")

SANDBOX_ACCOUNT_ID = "5ad0b0c0ffee4e1d8a5e0b0c0ffee001"
SANDBOX_ACCOUNT_NAME = "keybox"
SANDBOX_REALM = "keybox.sandbox.kazoo"
SANDBOX_USERNAME = "keybox-admin"
SANDBOX_PASSWORD = "sandbox-password"
SANDBOX_API_KEY = "5ad0b0c0ffee" * 5 + "0001"
"""64 characters, as Kazoo's `api_key` schema wants."""
ADMIN_USER_ID = "5ad0b0c0ffee4e1d8a5e0b0c0ffee0a1"
AGENT_USER_ID = "5ad0b0c0ffee4e1d8a5e0b0c0ffee0a2"
AGENT_DEVICE_ID = "5ad0b0c0ffee4e1d8a5e0b0c0ffee0d1"
AGENT_SIP_USERNAME = "agent1"

BUSY_NUMBER = "5550101"
NO_ANSWER_NUMBER = "5550102"
FAILED_NUMBER = "5550104"
"""Numbers (or numbers ending so) whose legs end busy, unanswered, or failed; every other
number answers."""

MAX_RANGE = 31 * 86_400 + 3_600
"""`crossbar.maximum_range`'s default (crossbar.hrl): 31 days and an hour."""
_RESERVED_CAVS = frozenset({"Account-ID", "Account-Name", "Account-Realm", "Authorizing-ID", "Authorizing-Type",
                            "Auto-Answer", "Call-Forward", "Owner-ID"})
"""Part of Kazoo's `reserved_ccv_keys` (kapps_call_command_types.hrl): never custom variables."""
_NUMBER_FILTER = str.maketrans("", "", " ,.-()")
_CALL_FORWARD_DEFAULTS = {"direct_calls_only": False, "enabled": False, "failover": False,
                          "ignore_early_media": True, "keep_caller_id": True, "require_keypress": True,
                          "substitute": True}
"""The `call_forward` defaults of Kazoo's devices schema (devices.md)."""


class KazooKnobs(BaseModel):
    """Faults and timings tests and QA set at start or at run time (`PATCH /sandbox/knobs`)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    token_lifetime: float = Field(3600.0, gt=0, description="seconds a new token lives (Kazoo: an hour)")
    ring_seconds: float = Field(0.01, ge=0, le=3600, description="seconds a leg rings before it answers or fails")
    call_seconds: float = Field(0.05, ge=0, le=3600, description="seconds an answered call lasts")
    agent_answers: bool = Field(True, description="the agent's SIP device answers its quickcalls")
    fail_next: list[int] = Field(default_factory=list, description="the next requests answer these statuses")
    latency: float = Field(0.0, ge=0, le=60, description="seconds added before every answer")
    down: bool = Field(False, description="every connection is closed without an answer")
    empty_list_204: bool = Field(False, description="an empty CDR list answers 204 with no body")
    max_range: int = Field(MAX_RANGE, gt=0, description="the longest CDR date range, in seconds")


class Refused(sandbox_kit.Refused):
    """A request the sandbox refuses as crossbar would: status, Kazoo's `message` and `data`."""

    def __init__(self, status: int, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(status, message)
        self.data = data if data is not None else {}


def system_error(status: int, error: str, text: str, **extra: Any) -> Refused:
    """`cb_context:add_system_error`: `message` is the error's name, `data.message` its text."""
    return Refused(status, error, {"message": text, **extra})


def validation_error(path: str, rule: str, text: str, **extra: Any) -> Refused:
    """`cb_context:add_validation_error`: 400 `validation error`, `data.<path>.<rule>.message`."""
    return Refused(400, "validation error", {path: {rule: {"message": text, **extra}}})


def outcome_of(number: str) -> str | None:
    """The hangup cause of a leg to `number`, None when it answers."""
    if number.endswith(BUSY_NUMBER):
        return "USER_BUSY"
    if number.endswith(NO_ANSWER_NUMBER):
        return "NO_ANSWER"
    if number.endswith(FAILED_NUMBER):
        return "UNALLOCATED_NUMBER"
    return None


@dataclass
class CallflowCall:
    """A quickcall that reached a callflow's number: what a Pivot driver needs to play Kazoo's side."""

    call_id: str
    callflow: dict[str, Any]
    number: str
    caller_id_number: str
    variables: dict[str, str]
    account_id: str = SANDBOX_ACCOUNT_ID


@dataclass
class _Leg:
    call_id: str
    target: str  # the number or SIP user rung
    authorizing_id: str
    authorizing_type: str
    owner_id: str
    created: float
    answered: float | None = None
    ended: float | None = None
    hangup_cause: str = ""
    other_leg: str = ""
    interaction_id: str = ""

    def channel(self) -> dict[str, Any]:
        return {"uuid": self.call_id, "answered": self.answered is not None, "direction": "outbound",
                "destination": self.target, "other_leg": self.other_leg, "authorizing_id": self.authorizing_id,
                "authorizing_type": self.authorizing_type, "owner_id": self.owner_id,
                "presence_id": f"{self.target}@{SANDBOX_REALM}", "timestamp": int(self.created) + GREGORIAN_OFFSET,
                "username": self.target}


@dataclass
class _Quickcall:
    number: str
    variables: dict[str, str]
    cid_number: str
    legs: list[_Leg] = field(default_factory=list)
    taken_over: asyncio.Event = field(default_factory=asyncio.Event)
    hangup: str = ""


class KazooSandbox(SandboxFaults[KazooKnobs]):
    """The crossbar subset in memory; `create_app` serves it.

    `quickcalls` counts quickcalls by the job id they carry (`JOB_VARIABLE`): a test asserts
    "exactly one call" on it. `on_callflow_call`, when set, is called when a quickcall reaches a
    callflow's number (the leg answered and entered the callflow): a later Pivot driver plays
    Kazoo's side of that call from there. If it returns True it owns the call, which then lasts
    until `hang_up(call_id)`; otherwise the call ends after `call_seconds` like any other.
    """

    def __init__(
        self, knobs: KazooKnobs | None = None, *, username: str = SANDBOX_USERNAME,
        password: str = SANDBOX_PASSWORD, account_name: str = SANDBOX_ACCOUNT_NAME,
        api_key: str = SANDBOX_API_KEY, clock: Callable[[], float] = time.time,
    ) -> None:
        self.knobs = (knobs or KazooKnobs()).model_copy()
        self.clock = clock
        self.account_id = SANDBOX_ACCOUNT_ID
        self._account_name = account_name
        self._user_secret = f"{username}:{password}".encode()
        self._api_key = api_key
        self._tokens: dict[str, float] = {}
        self.users: dict[str, dict[str, Any]] = {
            ADMIN_USER_ID: {"id": ADMIN_USER_ID, "username": username, "first_name": "Keybox", "last_name": "Admin",
                            "priv_level": "admin", "enabled": True},
            AGENT_USER_ID: {"id": AGENT_USER_ID, "username": "agent1", "first_name": "Agent", "last_name": "One",
                            "priv_level": "user", "enabled": True},
        }
        self.devices: dict[str, dict[str, Any]] = {
            AGENT_DEVICE_ID: {"id": AGENT_DEVICE_ID, "name": "Agent 1 desk phone", "device_type": "sip_device",
                              "enabled": True, "owner_id": AGENT_USER_ID,
                              "sip": {"username": AGENT_SIP_USERNAME, "method": "password",
                                      "invite_format": "username"}},
        }
        self.callflows: dict[str, dict[str, Any]] = {}
        self.cdrs: dict[str, dict[str, Any]] = {}
        self.legs: dict[str, _Leg] = {}
        self.quickcalls: Counter[str] = Counter()
        self.quickcall_log: list[dict[str, str]] = []
        self.requests: Counter[str] = Counter()
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.on_callflow_call: Callable[[CallflowCall], bool | None] | None = None
        self.stopping = asyncio.Event()
        self._calls: dict[str, _Quickcall] = {}  # by each leg's call id
        self._tasks: set[asyncio.Task[None]] = set()
        self._change = asyncio.Event()
        self._request_ids = itertools.count(1)

    # -- faults and administration ---------------------------------------------------------

    def request_id(self) -> str:
        return f"{next(self._request_ids):032x}"

    def revoke_tokens(self) -> None:
        """Every token dies at once (a token expiry mid-use, without waiting an hour)."""
        self._tokens.clear()

    async def wait_calls(self) -> None:
        """Until every quickcall placed so far has ended (or the sandbox stops)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def wait_next_change(self) -> None:
        """Until a leg of a quickcall answers or ends, or a callflow is reached."""
        await self._change.wait()

    def _notify(self) -> None:
        self._change.set()
        self._change = asyncio.Event()

    def close(self) -> None:
        """Calls in progress stay as they are; nothing runs after the sandbox stops."""
        self.stopping.set()
        for task in self._tasks:
            task.cancel()

    # -- authentication ---------------------------------------------------------------------

    def user_auth(self, data: dict[str, Any]) -> str:
        credentials, account_name = data.get("credentials"), data.get("account_name")
        if not isinstance(credentials, str) or not 1 <= len(credentials) <= 64:
            raise validation_error("credentials", "required", "Field is required but missing")
        method = data.get("method", "md5")
        digest = hashlib.sha1 if method == "sha" else hashlib.md5
        expected = digest(self._user_secret).hexdigest()
        if not (hmac.compare_digest(expected.encode(), credentials.lower().encode())
                and isinstance(account_name, str) and account_name.lower() == self._account_name.lower()):
            raise system_error(401, "invalid_credentials", "invalid credentials")
        return self._new_token()

    def api_auth(self, data: dict[str, Any]) -> str:
        api_key = data.get("api_key")
        if not isinstance(api_key, str) or len(api_key) != 64:
            raise validation_error("api_key", "minLength", "String must be 64 characters")
        if not hmac.compare_digest(api_key.encode(), self._api_key.encode()):
            raise system_error(401, "invalid_credentials", "invalid credentials")
        return self._new_token()

    def _new_token(self) -> str:
        token = secrets.token_hex(32)
        self._tokens[token] = self.clock() + self.knobs.token_lifetime
        return token

    def check_token(self, token: str) -> bool:
        expires = self._tokens.get(token)
        if expires is not None and self.clock() >= expires:
            del self._tokens[token]
            return False
        return expires is not None

    def auth_answer(self) -> dict[str, Any]:
        return {"account_id": self.account_id, "owner_id": ADMIN_USER_ID, "account_name": self._account_name,
                "is_reseller": False, "reseller_id": self.account_id, "language": "en-us", "apps": []}

    def check_account(self, account_id: str) -> None:
        if account_id != self.account_id:
            raise system_error(403, "forbidden", "forbidden")

    # -- users and devices ------------------------------------------------------------------

    def user(self, user_id: str) -> dict[str, Any]:
        return _found(self.users, user_id)

    def device(self, device_id: str) -> dict[str, Any]:
        return _found(self.devices, device_id)

    def create_device(self, data: dict[str, Any]) -> dict[str, Any]:
        name = data.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 128:
            raise validation_error("name", "required", "Field is required but missing")
        forward = data.get("call_forward")
        if forward is not None:
            if not isinstance(forward, dict):
                raise validation_error("call_forward", "type", "Value did not match type(s): object")
            number = forward.get("number", "")
            if not isinstance(number, str) or len(number) > 35:
                raise validation_error("call_forward.number", "maxLength", "String must not exceed 35 characters")
            forward = {**_CALL_FORWARD_DEFAULTS, **forward}
        owner = data.get("owner_id")
        if owner is not None and owner not in self.users:
            raise validation_error("owner_id", "not_found", "Owner not found")
        device_id = secrets.token_hex(16)
        doc = {**data, "id": device_id, "enabled": data.get("enabled", True)}
        if forward is not None:
            doc["call_forward"] = forward
        self.devices[device_id] = doc
        return dict(doc)

    def delete_device(self, device_id: str) -> dict[str, Any]:
        doc = _found(self.devices, device_id)
        del self.devices[device_id]
        return doc

    # -- callflows --------------------------------------------------------------------------

    def list_callflows(self) -> list[dict[str, Any]]:
        return [{"id": cf["id"], "name": cf.get("name", ""), "numbers": list(cf.get("numbers", [])),
                 "patterns": list(cf.get("patterns", [])), "featurecode": False,
                 "modules": _modules(cf.get("flow"))} for cf in self.callflows.values()]

    def callflow(self, callflow_id: str) -> dict[str, Any]:
        return _found(self.callflows, callflow_id)

    def save_callflow(self, data: dict[str, Any], callflow_id: str | None = None) -> dict[str, Any]:
        if callflow_id is not None:
            _found(self.callflows, callflow_id)
        numbers = data.get("numbers", [])
        if not isinstance(numbers, list) or not all(isinstance(n, str) and 1 <= len(n) <= 36 for n in numbers):
            raise validation_error("numbers", "type", "Value did not match type(s): array(string(1..36))")
        flow = data.get("flow")
        if not isinstance(flow, dict) or not isinstance(flow.get("module"), str):
            raise validation_error("flow", "required", "Field is required but missing")
        if flow["module"] == "pivot":
            url = (flow.get("data") or {}).get("voice_url")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise validation_error("flow.data.voice_url", "pattern", "Failed to match pattern '^https?://'")
        for other in self.callflows.values():
            taken = set(numbers) & set(other.get("numbers", []))
            if other["id"] != callflow_id and taken:
                raise validation_error("numbers", "unique", "Number already in use", cause=sorted(taken)[0])
        new_id = callflow_id or secrets.token_hex(16)
        doc = {**data, "id": new_id, "numbers": list(numbers), "patterns": list(data.get("patterns", []))}
        self.callflows[new_id] = doc
        return dict(doc)

    def delete_callflow(self, callflow_id: str) -> dict[str, Any]:
        doc = _found(self.callflows, callflow_id)
        del self.callflows[callflow_id]
        return doc

    def callflow_for(self, number: str) -> dict[str, Any] | None:
        return next((cf for cf in self.callflows.values() if number in cf.get("numbers", [])), None)

    # -- quickcalls and their legs ------------------------------------------------------------

    def quickcall(self, kind: str, endpoint_id: str, number: str, query: dict[str, str],
                  body_cavs: dict[str, Any], request_id: str) -> dict[str, Any]:
        """Start a quickcall (`cb_quickcall.erl`); the originate request Kazoo answers with."""
        if kind == "users":
            owner = self.user(endpoint_id)
            endpoints = [d for d in self.devices.values()
                         if d.get("owner_id") == owner["id"] and d.get("enabled", True)]
        else:
            endpoints = [self.device(endpoint_id)]
        if not endpoints:  # "no endpoints found"
            raise system_error(500, "unspecified_fault", "unspecified fault")
        if query.get("number_filter", "true") == "true":
            number = number.translate(_NUMBER_FILTER)
        cavs = {str(k): str(v) for k, v in {**body_cavs, **query}.items() if k not in _RESERVED_CAVS}
        now = self.clock()
        call = _Quickcall(number, cavs, query.get("cid-number", number))
        for endpoint in endpoints:
            leg = _Leg(f"{secrets.token_hex(18)}-quickcall", _target(endpoint), endpoint["id"], "device",
                       str(endpoint.get("owner_id") or ""), now)
            leg.interaction_id = f"{int(now) + GREGORIAN_OFFSET}-{secrets.token_hex(4)}"
            call.legs.append(leg)
            self.legs[leg.call_id] = leg
            self._calls[leg.call_id] = call
        job = cavs.get(JOB_VARIABLE)
        if job is not None:
            self.quickcalls[job] += 1
        self.quickcall_log.append({"kind": kind, "endpoint_id": endpoint_id, "number": number, **cavs})
        task = asyncio.get_running_loop().create_task(self._run(call, endpoints))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        auto_answer = query.get("auto_answer", "true") != "false"
        return {
            "application_name": "transfer", "application_data": {"route": number},
            "continue_on_fail": False, "custom_application_vars": cavs,
            "custom_channel_vars": {"account_id": self.account_id, "authorizing_id": endpoint_id,
                                    "authorizing_type": kind.rstrip("s"), "inherit_codec": "false",
                                    "retain_cid": "true" if "cid-number" in query else "false"},
            "dial_endpoint_method": "simultaneous",
            "endpoints": [{"outbound_call_id": leg.call_id, "endpoint_id": leg.authorizing_id,
                           "to_did": number, "to_realm": SANDBOX_REALM, "invite_format": "username",
                           "custom_channel_vars": {"auto_answer": auto_answer, "authorizing_id": leg.authorizing_id,
                                                   "owner_id": leg.owner_id, "account_id": self.account_id}}
                          for leg in call.legs],
            "ignore_early_media": True, "media": "process", "msg_id": request_id,
            "outbound_callee_id_name": query.get("cid-name", "Device QuickCall"),
            "outbound_callee_id_number": call.cid_number, "outbound_caller_id_name": "Device QuickCall",
            "outbound_caller_id_number": number, "timeout": int(query.get("timeout", "30") or 30),
        }

    def hang_up(self, call_id: str, cause: str = "NORMAL_CLEARING") -> bool:
        """End a call in progress (one a Pivot driver owns); False when it is not in progress."""
        call = self._calls.get(call_id)
        if call is None or all(leg.ended is not None for leg in call.legs):
            return False
        call.hangup = cause
        call.taken_over.set()
        return True

    def channels(self) -> list[dict[str, Any]]:
        return [leg.channel() for leg in self.legs.values() if leg.ended is None]

    async def _run(self, call: _Quickcall, endpoints: list[dict[str, Any]]) -> None:
        try:
            await asyncio.sleep(self.knobs.ring_seconds)
            first, *others = call.legs
            cause = self._endpoint_outcome(endpoints[0])
            for leg in others:  # simultaneous ring: the first endpoint wins the race
                self._end(leg, "LOSE_RACE", call)
            if cause is not None:
                self._end(first, cause, call)
                return
            first.answered = self.clock()
            self._notify()
            flow = self.callflow_for(call.number)
            if flow is not None:
                await self._in_callflow(call, first, flow)
                return
            second = _Leg(secrets.token_hex(16), call.number, first.authorizing_id, "device", first.owner_id,
                          self.clock(), other_leg=first.call_id, interaction_id=first.interaction_id)
            first.other_leg = second.call_id
            call.legs.append(second)
            self.legs[second.call_id] = second
            self._calls[second.call_id] = call
            await asyncio.sleep(self.knobs.ring_seconds)
            cause = outcome_of(call.number)
            if cause is None:
                second.answered = self.clock()
                self._notify()
                await self._talk(call)
            self._end(second, cause or call.hangup or "NORMAL_CLEARING", call)
            self._end(first, "NORMAL_CLEARING", call)
        except asyncio.CancelledError:
            pass

    async def _in_callflow(self, call: _Quickcall, leg: _Leg, flow: dict[str, Any]) -> None:
        owned = False
        if self.on_callflow_call is not None:
            try:
                owned = bool(self.on_callflow_call(CallflowCall(leg.call_id, dict(flow), call.number,
                                                                call.cid_number, dict(call.variables),
                                                                self.account_id)))
            except Exception:  # a broken driver must not break the sandbox
                log.exception("kazoo_sandbox.callflow_hook_failed", call_id=leg.call_id)
        self._notify()
        if owned:
            await call.taken_over.wait()
        else:
            await self._talk(call)
        self._end(leg, call.hangup or "NORMAL_CLEARING", call)

    async def _talk(self, call: _Quickcall) -> None:
        """An answered call lasts `call_seconds`, or until `hang_up`."""
        try:
            async with asyncio.timeout(self.knobs.call_seconds):
                await call.taken_over.wait()
        except TimeoutError:
            pass

    def _endpoint_outcome(self, endpoint: dict[str, Any]) -> str | None:
        forward = endpoint.get("call_forward")
        if isinstance(forward, dict) and forward.get("enabled"):
            if forward.get("require_keypress", True):
                return "NO_ANSWER"  # "press 1 to accept": the sandbox's callee never does
            return outcome_of(str(forward.get("number") or ""))
        return None if self.knobs.agent_answers else "NO_ANSWER"

    def _end(self, leg: _Leg, cause: str, call: _Quickcall) -> None:
        if leg.ended is not None:
            return
        leg.ended, leg.hangup_cause = self.clock(), cause
        self.legs.pop(leg.call_id, None)
        self._write_cdr(leg, call)
        self._notify()

    def _write_cdr(self, leg: _Leg, call: _Quickcall) -> None:
        ended = leg.ended or self.clock()
        month = datetime.fromtimestamp(ended, UTC).strftime("%Y%m")
        cdr_id = f"{month}-{leg.call_id}"
        billing = int(ended - leg.answered) if leg.answered is not None else 0
        ringing = int((leg.answered or ended) - leg.created)
        self.cdrs[cdr_id] = {
            "id": cdr_id, "call_id": leg.call_id, "call_direction": "outbound", "hangup_cause": leg.hangup_cause,
            "billing_seconds": billing, "duration_seconds": int(ended - leg.created), "ringing_seconds": ringing,
            "timestamp": int(ended) + GREGORIAN_OFFSET, "channel_created_time": int(leg.created * 1_000_000),
            # The quickcall leg shows the number as its caller (cb_quickcall.erl `aleg_cid`).
            "caller_id_number": call.number if leg.call_id.endswith("-quickcall") else call.cid_number,
            "caller_id_name": "Device QuickCall", "callee_id_number": leg.target, "callee_id_name": "",
            "to": f"{leg.target}@{SANDBOX_REALM}", "from": f"{call.cid_number}@{SANDBOX_REALM}",
            "request": f"{leg.target}@{SANDBOX_REALM}", "other_leg_call_id": leg.other_leg,
            "interaction_id": leg.interaction_id, "app_name": "crossbar", "media_server": "sandbox",
            "custom_application_vars": dict(call.variables),
            "custom_channel_vars": {"account_id": self.account_id, "authorizing_id": leg.authorizing_id,
                                    "authorizing_type": leg.authorizing_type, "owner_id": leg.owner_id},
        }

    # -- CDRs -----------------------------------------------------------------------------

    def list_cdrs(self, query: dict[str, str]) -> list[dict[str, Any]]:
        """The CDRs the query selects (`created_*` range and `filter_*`), newest first, as rows."""
        now = int(self.clock()) + GREGORIAN_OFFSET
        to = _gregorian_param(query, "created_to", now)
        since = _gregorian_param(query, "created_from", to - self.knobs.max_range)
        if to < since:
            raise validation_error("created_from", "date_range", f"created_to {to} is prior to created_from {since}",
                                   cause=since)
        if to - since > self.knobs.max_range:
            raise validation_error(
                "created_from", "date_range",
                f"created_to {to} is more than {self.knobs.max_range} seconds from created_from {since}", cause=to)
        docs = [d for d in self.cdrs.values() if since <= d["timestamp"] <= to and _matches(d, query)]
        docs.sort(key=lambda d: d["timestamp"], reverse=True)
        return [_cdr_row(d) for d in docs]

    def cdr(self, cdr_id: str) -> dict[str, Any]:
        if len(cdr_id) < 8 or cdr_id[6] != "-" or not cdr_id[:6].isdigit():
            raise Refused(404, "could not find cdr with supplied id")
        return _found(self.cdrs, cdr_id)


def _found(docs: dict[str, dict[str, Any]], doc_id: str) -> dict[str, Any]:
    doc = docs.get(doc_id)
    if doc is None:
        raise system_error(404, "bad_identifier", "bad identifier", cause=doc_id)
    return dict(doc)


def _target(endpoint: dict[str, Any]) -> str:
    forward = endpoint.get("call_forward")
    if isinstance(forward, dict) and forward.get("enabled") and forward.get("number"):
        return str(forward["number"])
    sip = endpoint.get("sip")
    return str(sip.get("username") or endpoint["id"]) if isinstance(sip, dict) else str(endpoint["id"])


def _modules(flow: object) -> list[str]:
    modules: list[str] = []
    while isinstance(flow, dict) and isinstance(flow.get("module"), str):
        modules.append(flow["module"])
        children = flow.get("children")
        flow = next(iter(children.values()), None) if isinstance(children, dict) and children else None
    return modules


def _gregorian_param(query: dict[str, str], name: str, default: int) -> int:
    value = query.get(name)
    if value is None:
        return default
    if not value.isdigit():
        raise validation_error(name, "type", "Value did not match type(s): integer")
    return int(value)


def _lookup(doc: Any, path: str) -> tuple[bool, Any]:
    for key in path.split("."):
        if not isinstance(doc, dict) or key not in doc:
            return False, None
        doc = doc[key]
    return True, doc


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _matches(doc: dict[str, Any], query: dict[str, str]) -> bool:
    """Kazoo's query-string filters (filters.md), on the whole document."""
    for key, wanted in query.items():
        if key.startswith("filter_not_"):
            found, value = _lookup(doc, key.removeprefix("filter_not_"))
            if found and _text(value) == wanted:
                return False
        elif key.startswith("filter_"):
            found, value = _lookup(doc, key.removeprefix("filter_"))
            if not found or _text(value) != wanted:
                return False
        elif key in ("has_key", "key_missing") and _lookup(doc, wanted)[0] == (key == "key_missing"):
            return False
    return True


def _cdr_row(doc: dict[str, Any]) -> dict[str, Any]:
    """A CDR as the list shows it: Kazoo's fixed columns (kzd_cdrs.hrl), no custom variables."""
    started = doc["timestamp"] - doc["duration_seconds"]
    unix = started - GREGORIAN_OFFSET
    ccvs = doc.get("custom_channel_vars", {})
    return {
        "id": doc["id"], "call_id": doc["call_id"], "caller_id_number": doc["caller_id_number"],
        "caller_id_name": doc["caller_id_name"], "callee_id_number": doc["callee_id_number"],
        "callee_id_name": doc["callee_id_name"], "duration_seconds": str(doc["duration_seconds"]),
        "billing_seconds": str(doc["billing_seconds"]), "timestamp": str(started),
        "hangup_cause": doc["hangup_cause"], "other_leg_call_id": doc["other_leg_call_id"],
        "owner_id": ccvs.get("owner_id", ""), "to": doc["to"], "from": doc["from"],
        "direction": doc["call_direction"], "request": doc["request"],
        "authorizing_id": ccvs.get("authorizing_id", ""), "cost": "0", "dialed_number": doc["callee_id_number"],
        "calling_from": doc["caller_id_number"], "unix_timestamp": str(unix),
        "iso_8601": datetime.fromtimestamp(unix, UTC).date().isoformat(), "call_type": "",
        "media_server": doc.get("media_server", ""), "interaction_id": doc.get("interaction_id", ""),
    }
