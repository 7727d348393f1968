"""What the sandbox answers, apart from HTTP: tokens, seeded keys, codes, fault knobs."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
import secrets
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt
from pydantic import BaseModel, ConfigDict, Field

from ivr.backends.kimvoice._methods import (
    CbsCodeParams,
    IdentifyParams,
    KeyHoldersParams,
    NoParams,
    UpdateCodeParams,
    ValidateParams,
)
from ivr.backends.kimvoice._models import (
    CbsCode,
    CodeType,
    HealthCheck,
    IdentifiedKeyHolder,
    KeyHolder,
    KeyHolders,
    OperationalMode,
    UpdateCode,
    Validation,
)
from ivr.backends.kimvoice.sandbox._data import SEED_BOXES, SEED_KEYS, SeedKey
from ivr.errors import ErrorCode
from ivr.sandbox_kit import answer_after
from ivr.settings import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET

CODE_SEED = b"keybox-ivr sandbox"
_FAILED_ONCE_KEPT = 100_000
"""Requests `fail_each_once` remembers: a long run must not grow the sandbox without bound."""
VALIDATION_WINDOW = 600.0
ISSUER = "KimVoiceAPI"


class Knobs(BaseModel):
    """Faults QA and tests can set at start or at run time (`PATCH /sandbox/knobs`)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    operational_mode: OperationalMode = OperationalMode.NORMAL
    message: str | None = Field(None, description="HealthCheck's message, spoken to callers in DR mode")
    latency: float = Field(0.0, ge=0, le=60, description="seconds added before every answer")
    failure_rate: float = Field(0.0, ge=0, le=1, description="share of requests that fail (see failure_status)")
    fail_next: int = Field(0, ge=0, description="the next N requests fail (see failure_status)")
    fail_each_once: bool = Field(False, description="every distinct request fails the first time it comes, then "
                                 "answers: what a flaky proxy does to each (see failure_status)")
    failure_status: Literal[500, 502, 503, 504] = Field(
        503, description="how a request fails: 503 with ApiError 9001 (maintenance), or a bare 500, 502 or 504")
    token_lifetime: float = Field(48 * 3600.0, gt=0, description="seconds a new token lives")


class Refused(Exception):
    """An operation the sandbox refuses with an ApiError body."""

    def __init__(self, status: int, error_code: int, message: str, user_message: str | None = None) -> None:
        super().__init__(message)
        self.status, self.error_code, self.message, self.user_message = status, error_code, message, user_message


def update_code_for(key_number: int, primary_member: int, update_member: int, pod_number: int, day: str) -> str:
    """The update code the sandbox issues for these inputs on `day` (YYYY-MM-DD, UTC)."""
    return _digits(f"update|{key_number}|{primary_member}|{update_member}|{pod_number}|{day}", 7)


def cbs_code_for(box_number: int, key_number: int, primary_member: int, day: str) -> str:
    """The CBS code the sandbox issues for these inputs on `day` (YYYY-MM-DD, UTC)."""
    return _digits(f"cbs|{box_number}|{key_number}|{primary_member}|{day}", 6)


def _digits(text: str, length: int) -> str:
    number = int.from_bytes(hmac.new(CODE_SEED, text.encode(), hashlib.sha256).digest()[:8], "big")
    return str(number % 10**length).zfill(length)


class Sandbox:
    """KimVoice's behaviour over the seeded data; `ivr.backends.kimvoice.sandbox.create_app` serves it."""

    def __init__(
        self,
        knobs: Knobs | None = None,
        *,
        clients: dict[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.initial_knobs = (knobs or Knobs()).model_copy()
        self.knobs = self.initial_knobs.model_copy()
        self.clock = clock
        self._clients = clients or {SANDBOX_CLIENT_ID: SANDBOX_CLIENT_SECRET}
        self._signing_key = secrets.token_bytes(32)
        self._keys = {k.key_number: k for k in SEED_KEYS}
        self._boxes = {b.box_number: b for b in SEED_BOXES}
        self._validated: dict[tuple[str, int, CodeType], dict[tuple[int, int], float]] = defaultdict(dict)
        self.stopping = asyncio.Event()
        self.requests: Counter[str] = Counter()
        self.statuses: Counter[tuple[str, int]] = Counter()
        self._failed_once: set[str] = set()

    # -- faults, stats and administration ----------------------------------------------

    async def delay(self) -> bool:
        """Wait out the latency knob; False when the sandbox is stopping meanwhile."""
        return await answer_after(self.knobs.latency, self.stopping)

    def should_fail(self, request: str = "") -> bool:
        """Whether this request fails; `request` names it (method, path and query) for `fail_each_once`."""
        if self.knobs.fail_next:
            self.knobs.fail_next -= 1
            return True
        if self.knobs.fail_each_once and request not in self._failed_once:
            if len(self._failed_once) >= _FAILED_ONCE_KEPT:
                self._failed_once.clear()
            self._failed_once.add(request)
            return True
        return self.knobs.failure_rate > 0 and random.random() < self.knobs.failure_rate

    def record(self, method: str, status: int) -> None:
        self.requests[method] += 1
        self.statuses[method, status] += 1

    def stats(self) -> dict[str, object]:
        statuses: dict[str, dict[str, int]] = defaultdict(dict)
        for (method, status), count in self.statuses.items():
            statuses[method][str(status)] = count
        return {"requests": dict(self.requests), "statuses": dict(statuses)}

    def reset(self) -> None:
        """Back to the start: knobs as started, no validations, no statistics."""
        self.knobs = self.initial_knobs.model_copy()
        self._validated.clear()
        self.requests.clear()
        self.statuses.clear()
        self._failed_once.clear()

    def revoke_tokens(self) -> None:
        """Every token issued so far is refused from now on (a new signing key)."""
        self._signing_key = secrets.token_bytes(32)

    # -- tokens -----------------------------------------------------------------------

    def log_on(self, client_id: str, client_secret: str) -> str | None:
        expected = self._clients.get(client_id)
        if expected is None or not hmac.compare_digest(expected, client_secret):
            return None
        now = int(self.clock())
        claims = {
            "unique_name": client_id,
            "iss": ISSUER,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "nbf": now,
            "exp": now + max(int(self.knobs.token_lifetime), 1),
        }
        return jwt.encode(claims, self._signing_key, algorithm="HS256")

    def token_id(self, token: str) -> str | None:
        """The token's id when it is ours and valid now, else None (the caller answers 401)."""
        try:
            claims = jwt.decode(
                token, self._signing_key, algorithms=["HS256"], issuer=ISSUER,
                options={
                    "verify_exp": False, "verify_nbf": False, "verify_iat": False, "require": ["exp", "nbf", "jti"],
                },
            )
        except jwt.PyJWTError:
            return None
        now = self.clock()
        return claims["jti"] if claims["nbf"] <= now < claims["exp"] else None

    # -- the KimVoice methods: each takes its parameters and the caller's token id -------

    def health_check(self, p: NoParams, token_id: str) -> HealthCheck:
        mode = self.knobs.operational_mode
        message = self.knobs.message
        if mode is OperationalMode.DISASTER_RECOVERY and message is None:
            message = "We are running on our backup system. Codes are still available."
        return HealthCheck(operational_mode=mode, message=message)

    def get_key_holders(self, p: KeyHoldersParams, token_id: str) -> KeyHolders:
        key = self._keys.get(p.key_number)
        if key is None or not hmac.compare_digest(key.pin, p.pin):
            raise Refused(404, ErrorCode.PIN_MISMATCH, "Key number and PIN do not match.")
        return KeyHolders(key_holders=list(key.records))

    def identify_key_holder(self, p: IdentifyParams, token_id: str) -> IdentifiedKeyHolder:
        return self._key(p.key_number).identity

    def validate_key_holder(self, p: ValidateParams, token_id: str) -> Validation:
        key = self._authorized_key(p.key_number)
        if not any(p.member_number in _member_numbers(r) and p.pod_number in r.pods for r in key.records):
            raise Refused(403, ErrorCode.KEY_NOT_ASSIGNED, "Key is not assigned to this member and pod.")
        self._validated[token_id, p.key_number, p.code_type][p.member_number, p.pod_number] = self.clock()
        return Validation(is_authorized=True, key_number=p.key_number, member_number=p.member_number,
                          pod_number=p.pod_number, code_type=p.code_type)

    def get_update_code(self, p: UpdateCodeParams, token_id: str) -> UpdateCode:
        key = self._authorized_key(p.key_number)
        self._require_validation(token_id, p.key_number, CodeType.UPDATE, (p.update_member, p.pod_number))
        record = self._record(key, p.primary_member)
        if p.update_member not in _member_numbers(record) or p.pod_number not in record.pods:
            raise Refused(403, ErrorCode.KEY_NOT_ASSIGNED, "Key is not assigned to this member and pod.")
        day, expires = self._today()
        return UpdateCode(
            update_code=update_code_for(p.key_number, p.primary_member, p.update_member, p.pod_number, day),
            instructions="Press the power button, enter the code, then press enter.",
            expires_utc=expires,
        )

    def get_cbs_code(self, p: CbsCodeParams, token_id: str) -> CbsCode:
        key = self._authorized_key(p.key_number)
        self._require_validation(token_id, p.key_number, CodeType.CBS, None)
        self._record(key, p.primary_member)
        box = self._boxes.get(p.box_number)
        if box is None:
            raise Refused(404, ErrorCode.BOX_NOT_FOUND, "Key box not found.")
        if not hmac.compare_digest(box.shackle_code, p.shackle_code):
            raise Refused(400, ErrorCode.SHACKLE_MISMATCH, "Shackle code does not match the key box.")
        day, expires = self._today()
        return CbsCode(cbs_code=cbs_code_for(p.box_number, p.key_number, p.primary_member, day), expires_utc=expires)

    # -- rules ----------------------------------------------------------------------------

    def _key(self, key_number: int) -> SeedKey:
        key = self._keys.get(key_number)
        if key is None:
            raise Refused(404, ErrorCode.KEY_NOT_FOUND, "Key not found.")
        return key

    def _authorized_key(self, key_number: int) -> SeedKey:
        key = self._key(key_number)
        if key.refusal is not None:
            r = key.refusal
            raise Refused(403, r.error_code, r.message, r.user_message)
        return key

    @staticmethod
    def _record(key: SeedKey, primary_member: int) -> KeyHolder:
        for record in key.records:
            if record.primary_member == primary_member:
                return record
        raise Refused(403, ErrorCode.KEY_NOT_ASSIGNED, "No key record has this primary member.")

    def _require_validation(
        self, token_id: str, key_number: int, code_type: CodeType, member_pod: tuple[int, int] | None
    ) -> None:
        # An update code needs the same member and pod validated; a CBS code names no pod,
        # so any CBS validation of the key will do.
        seen = self._validated.get((token_id, key_number, code_type), {})
        times = [seen.get(member_pod)] if member_pod is not None else list(seen.values())
        if not any(t is not None and self.clock() - t < VALIDATION_WINDOW for t in times):
            raise Refused(409, ErrorCode.NOT_VALIDATED, "Validate the key holder first.")

    def _today(self) -> tuple[str, datetime]:
        now = datetime.fromtimestamp(self.clock(), UTC)
        midnight = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
        return now.date().isoformat(), midnight


def _member_numbers(record: KeyHolder) -> set[int]:
    return {m.member_number for m in record.members}

