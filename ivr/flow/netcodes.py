"""What the flow asks of a lock NetCode backend: the NetCode of a lock for the caller's member.

Codelocks implements it in the service (`ivr.backends.codelocks.LockNetCodes`); unset, the
code-type menu does not offer it.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["LockNetCodes"]


class LockNetCodes(Protocol):
    """The operator's lock directory and the NetCodes of its locks."""

    def knows(self, lock_number: str) -> bool:
        """Whether the directory has a lock of that number (what the caller typed)."""
        ...

    async def netcode(self, lock_number: str, member: int) -> str:
        """The NetCode of the lock for now, as digits.

        `NetCodeNotAllowedError` when the member may not open that lock; another `NetCodeError`
        (unavailable, quota used up) when there is no NetCode to give now.
        """
        ...
