"""Codelocks Connect: lock NetCodes, for callers who open a KitLock or a K3 Connect lock.

`CodelocksClient` speaks the API (a NetCode; the durations of a lock model); `load_locks` reads
the operator's lock directory; `netcode_start` says which hour (or day) a NetCode starts, in the
lock's own time; `NetCodes` hands one out, kept per lock and period, within a monthly budget;
`DirectoryNetCodes` is what the call flow asks.
`ivr.backends.codelocks.sandbox` is a stand-in server that speaks the same wire.
"""

from ivr.backends.codelocks._client import CodelocksClient
from ivr.backends.codelocks._line import DirectoryNetCodes
from ivr.backends.codelocks._locks import MAX_LOCKS, MAX_LOCKS_FILE_BYTES, Lock, LockDirectory, load_locks
from ivr.backends.codelocks._models import (
    DURATIONS,
    LOCK_MODELS,
    Duration,
    DurationInfo,
    LockModel,
    NetCode,
    NetCodeAnswer,
    durations_of,
)
from ivr.backends.codelocks._netcodes import WARN_AT, MemoryNetCodeStore, NetCodes, NetCodeStore
from ivr.backends.codelocks._periods import START_FORMAT, netcode_start, period_end

__all__ = [
    "DURATIONS",
    "LOCK_MODELS",
    "MAX_LOCKS",
    "MAX_LOCKS_FILE_BYTES",
    "START_FORMAT",
    "WARN_AT",
    "CodelocksClient",
    "DirectoryNetCodes",
    "Duration",
    "DurationInfo",
    "Lock",
    "LockDirectory",
    "LockModel",
    "MemoryNetCodeStore",
    "NetCode",
    "NetCodeAnswer",
    "NetCodeStore",
    "NetCodes",
    "durations_of",
    "load_locks",
    "netcode_start",
    "period_end",
]
