"""Fixtures shared by every test: a hermetic environment, a real KimVoice sandbox on loopback and
a client for it."""

from __future__ import annotations

import io
import logging
import os
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import structlog

from ivr.backends.kimvoice import KimVoiceClient
from ivr.backends.kimvoice.sandbox import Knobs, Sandbox, SandboxServer
from ivr.logging import configure_logging
from ivr.settings import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET


@pytest.fixture(scope="session", autouse=True)
def hermetic_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every test, and every process a test starts, sees only the settings the test gives it.

    The settings object reads `IVR_*` variables and a `.env` in the working directory: a
    developer's exported `IVR_AGI_PORT`, or a `.env` in the checkout, would change what the
    tests observe. So the `IVR_*` variables go, the working directory is an empty temporary
    one, and the default data directory (`$XDG_DATA_HOME/keybox-ivr`) is temporary too: no
    test writes to the user's real `~/.local/share/keybox-ivr`. Session-scoped, so that
    module- and session-scoped fixtures that start processes are covered as well.
    """
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        for name in [name for name in os.environ if name.startswith("IVR_")]:
            patch.delenv(name)
        patch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
        patch.chdir(home)
        yield


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


@pytest.fixture
def log_text() -> Iterator[io.StringIO]:
    """Every log line, ours and the libraries', as JSON at debug level; the logging set-up of
    before is restored after (for tests that a secret never reaches a log)."""
    saved_config = structlog.get_config() if structlog.is_configured() else None
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging("json", "debug", stream=stream)
    yield stream
    root.handlers[:], root.level = saved
    if saved_config is not None:
        structlog.configure(**saved_config)
    else:
        structlog.reset_defaults()
