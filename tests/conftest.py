"""Fixtures shared by every test: a real KimVoice sandbox on loopback and a client for it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from ivr.kimvoice import KimVoiceClient
from ivr.kimvoice.sandbox import Knobs, Sandbox, SandboxServer
from ivr.settings import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET


class Clock:
    """Wall-clock time that a test can move forward (token expiry without waiting)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def sandbox_clock() -> Clock:
    return Clock()


@pytest.fixture
async def sandbox(sandbox_clock: Clock) -> AsyncIterator[SandboxServer]:
    async with SandboxServer(Sandbox(Knobs(), clock=sandbox_clock)) as server:
        yield server


@pytest.fixture
def client_clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(sandbox: SandboxServer, client_clock: Clock) -> AsyncIterator[KimVoiceClient]:
    async with KimVoiceClient(
        sandbox.url, SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, timeout=3.0, backoff=0.01, clock=client_clock
    ) as kimvoice:
        yield kimvoice
