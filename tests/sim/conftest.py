"""A tiny scripted FastAGI "service" on loopback for testing the simulated Asterisk.

The test plays the service: it accepts the simulator's connection, reads the environment, sends
fixed command lines and reads the simulator's reply lines, all over a real socket. Test modules
get it through the `fastagi` fixture and import these names for type checking only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ivr.catalog import PromptCatalog, default_prompts_dir
from ivr.sim import Caller, CallResult, ScriptedCaller, SoundLibrary, place_call
from ivr.tts import TtsCache

# Only a broken test waits this long; a passing one never does.
PATIENCE = 3.0


@dataclass
class Service:
    """The service's end of one FastAGI connection."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    environment: list[str] = field(default_factory=list)

    async def line(self) -> str:
        """The next line the simulator wrote, without its newline."""
        data = await asyncio.wait_for(self.reader.readline(), PATIENCE)
        assert data.endswith(b"\n"), f"no complete line: {data!r}"
        return data[:-1].decode()

    async def send(self, command: str) -> str:
        """Send one command line; return its reply (a 520 block joined with newlines)."""
        self.writer.write(command.encode() + b"\n")
        await self.writer.drain()
        lines = [await self.line()]
        if lines[0].startswith("520-"):
            while not lines[-1].startswith("520 "):
                lines.append(await self.line())
        return "\n".join(lines)

    async def rest(self) -> bytes:
        """Everything the simulator writes until it closes the connection."""
        return await asyncio.wait_for(self.reader.read(), PATIENCE)

    def close(self) -> None:
        self.writer.close()


@dataclass
class Call:
    """A call in progress: the simulator's task and the service's end of its connection."""

    task: asyncio.Task[CallResult]
    service: Service

    async def result(self) -> CallResult:
        return await asyncio.wait_for(self.task, PATIENCE)

    async def hang_up_and_result(self) -> CallResult:
        """The service closes the connection, as it does when the flow has ended."""
        self.service.close()
        return await self.result()


@dataclass
class FastAgi:
    """A listening socket standing in for the keybox FastAGI server."""

    address: str
    sounds: SoundLibrary
    accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]]
    tasks: list[asyncio.Task[CallResult]] = field(default_factory=list)

    async def dial(self, caller: Caller | None = None, route: str = "keybox", **options: Any) -> Call:
        """Place a call; return once the environment has arrived at the service."""
        options.setdefault("close_wait", 1.0)
        task = asyncio.create_task(
            place_call(self.address, route, caller=caller or ScriptedCaller(), sounds=self.sounds, **options)
        )
        self.tasks.append(task)
        reader, writer = await asyncio.wait_for(self.accepted.get(), PATIENCE)
        service = Service(reader, writer)
        while line := await service.line():
            service.environment.append(line)
        return Call(task, service)


@pytest.fixture(scope="session")
def catalog() -> PromptCatalog:
    return PromptCatalog.load(default_prompts_dir())


@pytest.fixture
def tts(tmp_path: Path) -> TtsCache:
    return TtsCache(tmp_path / "tts")


@pytest.fixture
def sounds(catalog: PromptCatalog, tts: TtsCache) -> SoundLibrary:
    return SoundLibrary(catalog, tts, others={"beep"})


@pytest.fixture
async def fastagi(sounds: SoundLibrary) -> AsyncIterator[FastAgi]:
    accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accepted.put((reader, writer))

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    harness = FastAgi(f"127.0.0.1:{port}", sounds, accepted)
    try:
        yield harness
    finally:
        for task in harness.tasks:
            task.cancel()
        await asyncio.gather(*harness.tasks, return_exceptions=True)
        while not accepted.empty():
            accepted.get_nowait()[1].close()
        server.close()
        await server.wait_closed()
