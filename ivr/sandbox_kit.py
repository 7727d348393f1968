"""What every sandbox (KimVoice, ICTCore, Kazoo, Kimoby, Codelocks) shares: the latency wait,
`fail_next`, request counts, fault knobs read and changed over HTTP, the `down` knob that drops
connections with no answer, and `Refused`. One copy, so that a knob means the same on every
stand-in."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["FaultKnobs", "Refused", "SandboxFaults", "answer_after", "hang_up", "knob_routes", "refusing_when_down"]

K = TypeVar("K", bound=BaseModel)


class Refused(Exception):
    """A request a sandbox refuses as its service would: a status and a message, which each
    sandbox's app puts in that service's error body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


async def answer_after(latency: float, stopping: asyncio.Event) -> bool:
    """A sandbox's latency knob: wait `latency` seconds before answering; False when the server
    began to stop meanwhile (its answers then go out at once, as 503s)."""
    if latency and not stopping.is_set():
        try:
            async with asyncio.timeout(latency):
                await stopping.wait()
        except TimeoutError:
            return True
    return not stopping.is_set()


class FaultKnobs(Protocol):
    latency: float
    fail_next: list[int]


KF = TypeVar("KF", bound=FaultKnobs)


class SandboxFaults(Generic[KF]):
    """The fault plumbing of a sandbox's state: it sets `knobs`, `stopping`, `requests` and
    `statuses` in its own `__init__`."""

    knobs: KF
    stopping: asyncio.Event
    requests: Counter[str]
    statuses: Counter[tuple[str, int]]

    async def delay(self) -> bool:
        """Wait out the latency knob; False when the sandbox is stopping meanwhile."""
        return await answer_after(self.knobs.latency, self.stopping)

    def take_fault(self) -> int | None:
        """The status the next request is to answer, from `fail_next`."""
        if not self.knobs.fail_next:
            return None
        first, *rest = self.knobs.fail_next
        self.knobs.fail_next = rest
        return first

    def record(self, route: str, status: int) -> None:
        self.requests[route] += 1
        self.statuses[route, status] += 1


class KnobHolder(Protocol, Generic[K]):
    knobs: K


def knob_routes(
    holder: KnobHolder[K], *, problem: Callable[[Exception], str] = str, on_change: Callable[[K], None] | None = None,
) -> list[Route]:
    """`GET /sandbox/knobs` and `PATCH /sandbox/knobs` (a JSON object of the knobs to change,
    checked by the knobs' own model; 400 with the problem otherwise)."""

    async def get_knobs(_: Request) -> Response:
        return JSONResponse(holder.knobs.model_dump(mode="json"))

    async def patch_knobs(request: Request) -> Response:
        try:
            changes: Any = json.loads(await request.body())
            if not isinstance(changes, dict):
                raise ValueError("expected a JSON object")
            holder.knobs = holder.knobs.model_validate(holder.knobs.model_dump() | changes)
        except (ValueError, ValidationError) as exc:
            return JSONResponse({"error": problem(exc)}, status_code=400)
        if on_change is not None:
            on_change(holder.knobs)
        return JSONResponse(holder.knobs.model_dump(mode="json"))

    return [Route("/sandbox/knobs", get_knobs, methods=["GET"]),
            Route("/sandbox/knobs", patch_knobs, methods=["PATCH"])]


async def hang_up(send: Send) -> bool:
    """Close the connection without an answer (the `down` knob); False when the server gives no way to.

    uvicorn's `send` is a method of its request cycle, which holds the connection's transport.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    abort = getattr(transport, "abort", None)
    if abort is None:
        return False
    abort()
    for _ in range(3):  # let uvicorn see the connection lost, so it answers nothing
        await asyncio.sleep(0)
    return True


def refusing_when_down(inner: ASGIApp, down: Callable[[], bool], on_down: Callable[[], None],
                       refusal: ASGIApp) -> ASGIApp:
    """`inner`, except while `down()`: then each request's connection is dropped unanswered
    (`refusal` where the server gives no way to), after `on_down()`."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and down():
            on_down()
            if not await hang_up(send):
                await refusal(scope, receive, send)
            return
        await inner(scope, receive, send)

    return app
