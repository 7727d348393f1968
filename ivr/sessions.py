"""The calls in progress of one transport: one task each, and a drain that lets them end.

FastAGI and ARI both run each call in a task of its own, under the call's log context, end it
with the transport's `finish` whatever happened, and on shutdown wait `grace` seconds before
cancelling what is left. That lives here once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from ivr.logging import bind_call, get_logger

log = get_logger("ivr.sessions")


class Finishable(Protocol):
    @property
    def call_id(self) -> str: ...

    @property
    def route(self) -> str: ...

    async def finish(self, timeout: float) -> None:
        """End the session: hang up unless the flow hung up or transferred, or the caller left."""


C = TypeVar("C", bound=Finishable)


class CallSessions:
    """Tasks of the calls in progress of the transport `name` (`agi`, `ari`: the log events' prefix)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._tasks: set[asyncio.Task[None]] = set()
        self._drain_cancelled: set[asyncio.Task[None]] = set()

    @property
    def active(self) -> int:
        return len(self._tasks)

    def start(self, session: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run `session` in a task of its own, counted until it ends."""
        task = asyncio.get_running_loop().create_task(session)
        self._tasks.add(task)
        task.add_done_callback(self._forget)
        return task

    async def run(self, call: C, handler: Callable[[C], Awaitable[object]], finish_timeout: float) -> None:
        """`handler(call)` with the call's id on every log line; the call is finished whatever happens."""
        with bind_call(call.call_id, route=call.route):
            try:
                await handler(call)
            except asyncio.CancelledError:
                log.warning(f"{self._name}.call_cancelled")
                raise
            except Exception:
                log.exception(f"{self._name}.handler_failed")
            finally:
                await call.finish(finish_timeout)

    @contextmanager
    def boundary(self) -> Iterator[None]:
        """Where a session's task ends: the drain's own cancellation stops here, any other goes on."""
        try:
            yield
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is None or task not in self._drain_cancelled:
                raise
            task.uncancel()

    async def drain(self, grace: float) -> None:
        """Let the calls in progress end within `grace` seconds, then cancel the rest and wait."""
        await asyncio.sleep(0)  # sessions accepted just before the drain reach `start`
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)
        while self._tasks:
            pending = set(self._tasks)
            for task in pending - self._drain_cancelled:
                self._drain_cancelled.add(task)
                task.cancel()
            log.warning(f"{self._name}.drain_cancelling", calls=len(pending))
            await asyncio.wait(pending)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._drain_cancelled.discard(task)
