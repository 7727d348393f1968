"""A Kimoby sandbox on loopback, a client for it whose pauses are recorded (not waited), and a
loopback receiver for the sandbox's webhooks."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ivr.backends.kimoby import KimobyClient, KimobyEvent, WebhookReceiver
from ivr.backends.kimoby.sandbox import (
    SANDBOX_API_KEY,
    SANDBOX_API_SECRET,
    KimobyKnobs,
    KimobySandbox,
    KimobySandboxServer,
)
from ivr.embedded_http import EmbeddedHttpServer

FAST_SCHEDULE = [0.0, 0.02, 0.02, 0.02, 0.02, 0.02]
"""The guide's six attempts, hundredths of a second apart."""


class Pauses:
    """A client's `sleep`: records each pause and returns at once."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


@pytest.fixture
async def server() -> AsyncIterator[KimobySandboxServer]:
    knobs = KimobyKnobs(step_seconds=0.01, retry_schedule=FAST_SCHEDULE, delivery_timeout=2.0)
    async with KimobySandboxServer(KimobySandbox(knobs)) as running:
        yield running


@pytest.fixture
def pauses() -> Pauses:
    return Pauses()


@pytest.fixture
async def client(server: KimobySandboxServer, pauses: Pauses) -> AsyncIterator[KimobyClient]:
    async with KimobyClient(server.api_url, SANDBOX_API_KEY, SANDBOX_API_SECRET, timeout=3.0, sleep=pauses) as kimoby:
        yield kimoby


class Events:
    """What a receiver handed on, in order."""

    def __init__(self) -> None:
        self.seen: list[KimobyEvent] = []

    async def __call__(self, event: KimobyEvent) -> None:
        self.seen.append(event)


class ReceiverServer:
    """A `WebhookReceiver` behind a loopback HTTP listener at `url` (`/webhooks/kimoby`), handing
    events to `events`. `use(key)` makes the receiver once the webhook is registered (its key
    comes in the answer). The first `lose_answers` accepted requests are answered 500 all the
    same, as if the 200 were lost on its way back: Kimoby then delivers the same event again."""

    def __init__(self) -> None:
        self.events = Events()
        self.lose_answers = 0
        self.answers: list[int] = []
        self.receiver: WebhookReceiver | None = None
        self._http = EmbeddedHttpServer(Starlette(routes=[Route("/webhooks/kimoby", self._endpoint, methods=["POST"])]))
        self.url = ""

    def use(self, key: str) -> WebhookReceiver:
        self.receiver = WebhookReceiver(key, self.url, self.events)
        return self.receiver

    async def start(self) -> None:
        await self._http.start()
        self.url = f"{self._http.url}/webhooks/kimoby"

    async def stop(self) -> None:
        if self.receiver is not None:
            await self.receiver.aclose()
        await self._http.stop()

    async def _endpoint(self, request: Request) -> Response:
        if self.receiver is None:
            return PlainTextResponse("not ready", status_code=503)
        status, text = await self.receiver.handle(request.headers, await request.body())
        if self.lose_answers and status == 200:
            self.lose_answers -= 1
            status, text = 500, "lost"
        self.answers.append(status)
        return PlainTextResponse(text, status_code=status)


@pytest.fixture
async def hook() -> AsyncIterator[ReceiverServer]:
    receiving = ReceiverServer()
    await receiving.start()
    yield receiving
    await receiving.stop()
