"""The lock directory: the TOML file (`IVR_CODELOCKS_LOCKS_FILE`) an operator keeps, one
`[[lock]]` table per lock, from the number a caller types to what Codelocks needs.

```toml
[[lock]]
number = 4711                 # what the caller types at enter-lock-number (1 to 10 digits)
id = "202011161623"           # the Codelocks lock id (the NetCode path's {id})
model = "KL1060C2"            # lockmodel
identifier = "451254"         # the lock's identifier
timezone = "Europe/London"    # IANA zone of the lock
duration = 4                  # Codelocks duration id
members = [5001, 6001]        # member numbers allowed; absent or empty: every key holder
```

The file is read whole at start-up and checked whole: a wrong entry stops the service with one
line naming the file, the entry and the rule, rather than a caller finding it on the phone.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from ivr.backends.codelocks._models import DURATIONS, LockModel, durations_of
from ivr.errors import SettingsError

__all__ = ["MAX_LOCKS", "MAX_LOCKS_FILE_BYTES", "Lock", "LockDirectory", "load_locks"]

MAX_LOCKS_FILE_BYTES = 1 << 20
"""A directory of ten thousand locks is about a megabyte of TOML; a larger file is not one."""
MAX_LOCKS = 10_000
MAX_MEMBERS = 1_000
_SETTING = "IVR_CODELOCKS_LOCKS_FILE"
_PATTERNS = {"number": "1 to 10 digits", "id": "1 to 64 letters and digits",
             "identifier": "1 to 64 letters and digits"}


def _digits(value: object) -> object:
    """A TOML integer or a string of digits, as the text a caller keys in."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _text(value: object) -> object:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class Lock(BaseModel):
    """One lock of the directory. `id` and `identifier` go into Codelocks' URL, so they are plain
    letters and digits; `members` empty means every key holder may have its NetCode."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    number: Annotated[str, BeforeValidator(_digits), Field(pattern=r"^[0-9]{1,10}$")]
    id: Annotated[str, BeforeValidator(_text), Field(pattern=r"^[0-9A-Za-z]{1,64}$")]
    model: LockModel
    identifier: Annotated[str, BeforeValidator(_text), Field(pattern=r"^[0-9A-Za-z]{1,64}$", repr=False)]
    timezone: str = Field(max_length=64)
    duration: int
    members: frozenset[Annotated[int, Field(ge=0, le=10**12)]] = Field(default=frozenset(), max_length=MAX_MEMBERS)

    @field_validator("number")
    @classmethod
    def _no_leading_zero(cls, value: str) -> str:
        # A caller's "0042" and "42" are the same lock: `find` compares numbers, not texts.
        return str(int(value))

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone") from None
        return value

    @model_validator(mode="after")
    def _duration_of_model(self) -> Lock:
        allowed = durations_of(self.model)
        if self.duration not in allowed:
            known = f"{self.duration} ({DURATIONS[self.duration]})" if self.duration in DURATIONS else self.duration
            raise ValueError(f"duration: {known} is not a duration of {self.model} "
                             f"(ids {min(allowed)}-{max(allowed)})")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def allows(self, member: int | None) -> bool:
        """Whether a key holder of `member` may have this lock's NetCode (None: not known)."""
        return not self.members or (member is not None and member in self.members)


class LockDirectory(Mapping[str, Lock]):
    """The locks by number (digits, no leading zero). `source` names the file it came from."""

    def __init__(self, locks: list[Lock], source: str = "") -> None:
        self._locks = {lock.number: lock for lock in locks}
        self.source = source

    def find(self, number: str | int) -> Lock | None:
        """The lock a caller's keyed `number` names, or None (not digits, or no such lock)."""
        text = str(number).strip()
        if not text.isascii() or not text.isdigit() or len(text) > 10:
            return None
        return self._locks.get(str(int(text)))

    def __getitem__(self, number: str) -> Lock:
        return self._locks[number]

    def __iter__(self) -> Iterator[str]:
        return iter(self._locks)

    def __len__(self) -> int:
        return len(self._locks)


def load_locks(path: str | Path) -> LockDirectory:
    """The lock directory in `path`; `SettingsError` (one line: the file, the entry, the rule)
    when it cannot be read or breaks a rule."""
    path = Path(path)
    where = f"{_SETTING} {path}"
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_LOCKS_FILE_BYTES + 1)
    except OSError as exc:
        raise SettingsError(f"{where}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    if len(raw) > MAX_LOCKS_FILE_BYTES:
        raise SettingsError(f"{where}: larger than {MAX_LOCKS_FILE_BYTES} bytes")
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise SettingsError(f"{where}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{where}: not TOML ({_one_line(str(exc))})") from None
    return LockDirectory(_locks_in(document, where), str(path))


def _locks_in(document: dict[str, Any], where: str) -> list[Lock]:
    unknown = sorted(set(document) - {"lock"})
    if unknown:
        raise SettingsError(f"{where}: unknown key {unknown[0]!r} (only [[lock]] tables)")
    entries = document.get("lock", [])
    if not isinstance(entries, list):
        raise SettingsError(f"{where}: `lock` must be an array of tables ([[lock]])")
    if len(entries) > MAX_LOCKS:
        raise SettingsError(f"{where}: more than {MAX_LOCKS} locks")
    locks: list[Lock] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries, start=1):
        label = f"lock #{index}"
        if isinstance(entry, dict) and isinstance(number := _digits(entry.get("number")), str):
            label += f" (number {_one_line(number)[:12]})"
        if not isinstance(entry, dict):
            raise SettingsError(f"{where}: {label}: not a table")
        try:
            lock = Lock.model_validate(entry)
        except ValidationError as exc:
            raise SettingsError(f"{where}: {label}: {_rule(exc)}") from None
        if lock.number in seen:
            raise SettingsError(f"{where}: {label}: number: {lock.number} is already lock #{seen[lock.number]}'s")
        seen[lock.number] = index
        locks.append(lock)
    return locks


def _rule(exc: ValidationError) -> str:
    """The first broken rule, as `field: what is wrong`, never the value it was given (an
    identifier is half of what makes a NetCode)."""
    error = exc.errors(include_url=False, include_input=False)[0]
    field = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif error["type"] == "string_pattern_mismatch":
        message = _PATTERNS.get(field, message)
    elif error["type"] == "missing":
        message = "missing"
    if not field:  # a rule of the whole entry: its message names the field
        return _one_line(message)
    return _one_line(f"{field}: {message}")


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]
