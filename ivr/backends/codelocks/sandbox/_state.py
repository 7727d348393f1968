"""What the Codelocks sandbox keeps and answers, apart from HTTP: its API key, the locks it
knows, the NetCode calls of each month and what is left of the quota, and the fault knobs.

NetCodes are deterministic, as Codelocks' are: an HMAC of the lock id, model, identifier, start
and duration, reduced to the model's digit count (`sandbox_netcode`), so a test knows the code a
request must get without asking.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ivr.backends.codelocks._models import DURATIONS, LockModel, durations_of
from ivr.sandbox_kit import Refused, SandboxFaults

__all__ = [
    "DIGITS",
    "QUOTA_MESSAGE",
    "SANDBOX_API_KEY",
    "SANDBOX_LOCKS",
    "CodelocksKnobs",
    "CodelocksSandbox",
    "Refused",
    "SandboxLock",
    "sandbox_netcode",
]

SANDBOX_API_KEY = "sandbox-codelocks-api-key-0123456789abcdef"
QUOTA_MESSAGE = "Limit Exceeded"
"""What an API key past its usage plan's quota gets (AWS API Gateway's wording)."""
_NETCODE_SECRET = b"keybox-ivr codelocks sandbox"

DIGITS: dict[LockModel, int] = {"KL1060": 6, "KL1060C2": 7, "KL1060G3": 7, "KL1550": 6, "K3CONNECT": 7}
"""NetCode length per model in the sandbox: 6 for the first KitLocks, 7 for the C2 and G3 (as
Codelocks' knowledge base says); KL1550 and K3CONNECT are guesses."""


@dataclass(frozen=True)
class SandboxLock:
    lock_id: str
    model: LockModel
    identifier: str


SANDBOX_LOCKS: tuple[SandboxLock, ...] = (
    SandboxLock("202011161623", "KL1060C2", "451254"),
    SandboxLock("202103011200", "KL1060", "123456"),
    SandboxLock("06050408434e47533039303138303136", "K3CONNECT", "2ym1989dzx"),
    SandboxLock("202604221226", "KL1060G3", "921239"),
)
"""The locks the sandbox knows: those of `locks.toml`, the sample lock directory beside it."""


def sandbox_netcode(lock_id: str, model: LockModel, identifier: str, start: str, duration: int) -> str:
    """The NetCode the sandbox gives for these parameters, always the same."""
    message = f"{lock_id}|{model}|{identifier}|{start}|{duration}".encode()
    number = int.from_bytes(hmac.new(_NETCODE_SECRET, message, hashlib.sha256).digest()[:8], "big")
    digits = DIGITS[model]
    return str(number % 10**digits).zfill(digits)


class CodelocksKnobs(BaseModel):
    """Faults and quotas tests and QA set at start or at run time (`PATCH /sandbox/knobs`)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    netcode_remaining: int = Field(100, ge=0, description="NetCode calls left this month (Business 1: 100)")
    utility_remaining: int = Field(1000, ge=0, description="utility calls left this month")
    quota_status: Literal[403, 429] = Field(403, description="the status of a used-up quota: 403 as the contract "
                                                             "has it, 429 as API Gateway sends it")
    netcode_field: Literal["ActualNetcode", "ActualNetCode"] = Field(
        "ActualNetcode", description="the NetCode's key in the answer (the guide spells it both ways)")
    fail_next: list[int] = Field(default_factory=list, description="the next requests answer these statuses")
    latency: float = Field(0.0, ge=0, le=60, description="seconds added before every answer")
    down: bool = Field(False, description="every connection is closed without an answer")



INVALID = "Invalid data supplied"
MISSING = "Missing required parameter"


class CodelocksSandbox(SandboxFaults[CodelocksKnobs]):
    """Codelocks Connect's NetCode and durations calls, in memory; `create_app` serves it.

    `netcode_calls` counts the NetCode requests of each month (`YYYY-MM`) that passed the key
    check, as Codelocks counts them: refused ones too.
    """

    def __init__(
        self, knobs: CodelocksKnobs | None = None, *, api_key: str = SANDBOX_API_KEY,
        locks: tuple[SandboxLock, ...] = SANDBOX_LOCKS, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.knobs = (knobs or CodelocksKnobs()).model_copy()
        self.clock = clock
        self._api_key = api_key.encode()
        self.locks = {lock.lock_id: lock for lock in locks}
        self.netcode_calls: Counter[str] = Counter()
        self.utility_calls: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.stopping = asyncio.Event()

    def close(self) -> None:
        self.stopping.set()

    def check_key(self, key: str) -> bool:
        return hmac.compare_digest(key.encode(), self._api_key)

    def count(self, kind: Literal["netcode", "utility"]) -> None:
        """Count one call against its quota; `Refused` (the quota message) when none is left."""
        month = self.clock().strftime("%Y-%m")
        remaining = self.knobs.netcode_remaining if kind == "netcode" else self.knobs.utility_remaining
        if remaining <= 0:
            raise Refused(self.knobs.quota_status, QUOTA_MESSAGE)
        if kind == "netcode":
            self.knobs.netcode_remaining = remaining - 1
            self.netcode_calls[month] += 1
        else:
            self.knobs.utility_remaining = remaining - 1
            self.utility_calls[month] += 1

    def netcode(self, lock_id: str, query: dict[str, str]) -> dict[str, object]:
        """The NetCode answer, in the guide's shape; `Refused` 404 or 400 as the guide lists them."""
        if any(not query.get(name) for name in ("start", "duration", "lockmodel", "identifier")):
            raise Refused(404, MISSING)
        lock = self.locks.get(lock_id)
        if lock is None or query["lockmodel"].upper() != lock.model or query["identifier"] != lock.identifier:
            raise Refused(400, INVALID)
        try:
            start = datetime.strptime(query["start"], "%Y-%m-%d %H:%M")
            duration = int(query["duration"])
        except ValueError:
            raise Refused(400, INVALID) from None
        length = DURATIONS.get(duration)
        if length is None or duration not in durations_of(lock.model) or start.minute != 0 or (
                length.in_days and start.hour != 0):
            raise Refused(400, INVALID)  # hour NetCodes start on the hour, day NetCodes at midnight
        text = start.strftime("%Y-%m-%d %H:%M")
        ends = start + timedelta(hours=length.hours, days=length.days)
        return {
            "Startdate": text, "DurationHours": length.hours, "DurationDays": length.days, "Mode": "standard",
            "SubMode": "alltime", "Timecode": lock.lock_id, self.knobs.netcode_field: sandbox_netcode(
                lock.lock_id, lock.model, lock.identifier, text, duration),
            "Resultstatus": "OK", "LockId": lock.lock_id, "Expires": ends.strftime("%Y-%m-%d %H:%M:%S"),
            "Startdata": {"original": text, "date_ymd": start.strftime("%Y-%m-%d"),
                          "time_hi": start.strftime("%H:%M"), "time_h": start.strftime("%H")},
        }

    def durations(self, query: dict[str, str]) -> list[dict[str, object]]:
        model = query.get("lockmodel", "").upper()
        if model not in DIGITS:
            raise Refused(400, INVALID)
        return [{"DurationID": i, "Mode": "standard", "SubMode": "alltime", "DurationDays": DURATIONS[i].days,
                 "DurationHours": DURATIONS[i].hours, "LockModels": model}
                for i in sorted(durations_of(model))]
