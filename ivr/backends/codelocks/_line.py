"""`DirectoryNetCodes`: the call flow's lock NetCodes (`ivr.flow.netcodes.LockNetCodes`) over the
operator's lock directory and `NetCodes` (kept per period, within the monthly budget)."""

from __future__ import annotations

from ivr.backends.codelocks._locks import LockDirectory
from ivr.backends.codelocks._netcodes import NetCodes
from ivr.errors import NetCodeRejectedError

__all__ = ["DirectoryNetCodes"]


class DirectoryNetCodes:
    """`timeout` bounds a caller's wait for a NetCode: past it the request goes on, its answer
    kept for the next caller, and this one hears `system-unavailable`."""

    def __init__(self, directory: LockDirectory, netcodes: NetCodes, *, timeout: float = 6.0) -> None:
        self.directory = directory
        self.netcodes = netcodes
        self._timeout = timeout

    def knows(self, lock_number: str) -> bool:
        return self.directory.find(lock_number) is not None

    async def netcode(self, lock_number: str, member: int) -> str:
        lock = self.directory.find(lock_number)
        if lock is None:
            raise NetCodeRejectedError(f"no lock numbered {lock_number[:10]!r} in the directory", 404)
        return (await self.netcodes.get(lock, member, timeout=self._timeout)).code
