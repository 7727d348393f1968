"""The JWT's life: log on lazily, refresh ahead of expiry, share one log-on among callers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import jwt

from ivr.errors import BadResponseError


@dataclass(frozen=True)
class Token:
    """A JWT and the times its payload carries (seconds since epoch)."""

    value: str = field(repr=False)
    expires: float
    not_before: float | None = None

    @classmethod
    def parse(cls, value: str) -> Token:
        """Read `exp`/`nbf` without checking the signature (the key is KimVoice's, not ours)."""
        try:
            claims = jwt.decode(value, options={"verify_signature": False, "verify_exp": False})
            expires = float(claims["exp"])
            not_before = float(claims["nbf"]) if "nbf" in claims else None
        except (jwt.PyJWTError, KeyError, TypeError, ValueError):
            raise BadResponseError("KimVoice Token/LogOn returned something that is not a JWT with exp") from None
        return cls(value, expires, not_before)

    def masked(self) -> str:
        return f"{self.value[:8]}…({len(self.value)} chars)"


class TokenCache:
    """Hands out a valid token; at most one log-on is in flight at any time.

    A token is refreshed in the background once `refresh_share` of its life is left, so callers
    rarely wait; past its expiry, callers wait for the shared log-on. The log-on runs in its own
    task: a caller that is cancelled (its deadline passed) does not cancel it for the others.
    """

    def __init__(
        self,
        log_on: Callable[[], Awaitable[Token]],
        *,
        clock: Callable[[], float] = time.time,
        refresh_share: float = 0.1,
        max_refresh_ahead: float = 300.0,
    ) -> None:
        self._log_on = log_on
        self._clock = clock
        self._refresh_share = refresh_share
        self._max_refresh_ahead = max_refresh_ahead
        self._token: Token | None = None
        self._refresh_at = 0.0
        self._pending: asyncio.Task[Token] | None = None

    @property
    def current(self) -> Token | None:
        return self._token

    async def get(self) -> Token:
        now = self._clock()
        token = self._token
        if token is not None and now < self._refresh_at:
            return token
        if token is not None and now < token.expires - 1:
            self._start_log_on()
            return token
        return await asyncio.shield(self._start_log_on())

    def invalidate(self, token: Token) -> None:
        """Forget `token` after KimVoice refused it, unless a newer one replaced it already."""
        if self._token is token:
            self._token = None

    def _start_log_on(self) -> asyncio.Task[Token]:
        if self._pending is None:
            self._pending = asyncio.get_running_loop().create_task(self._renew())
            self._pending.add_done_callback(self._finished)
        return self._pending

    async def _renew(self) -> Token:
        token = await self._log_on()
        issued = self._clock()
        lifetime = max(token.expires - max(token.not_before or issued, 0.0), 0.0)
        ahead = min(lifetime * self._refresh_share, self._max_refresh_ahead)
        self._token, self._refresh_at = token, token.expires - ahead
        return token

    def _finished(self, task: asyncio.Task[Token]) -> None:
        self._pending = None
        if not task.cancelled():
            task.exception()  # retrieved here; callers waiting on it see it too
