"""A sandbox serving from a thread of its own (its own event loop) while a CLI command under test
runs its own loop in the test's thread, as `ivr` does in its process; and the logging a command
configures for its process, put back after each test."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, Generic, TypeVar

import pytest
import structlog

from ivr.embedded_http import EmbeddedHttpServer

S = TypeVar("S", bound=EmbeddedHttpServer)
T = TypeVar("T")


class Threaded(Generic[S]):
    """`server`, started on its own loop in a thread until `close`."""

    def __init__(self, server: S) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = server
        self.run(server.start())

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(10)

    def close(self) -> None:
        self.run(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(autouse=True)
def logging_restored() -> Iterator[None]:
    """The command configures logging for its process, on the runner's stderr: put it back after."""
    saved_config = structlog.get_config() if structlog.is_configured() else None
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = saved
    if saved_config is not None:
        structlog.configure(**saved_config)
    else:
        structlog.reset_defaults()
