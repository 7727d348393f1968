"""A real loopback FastAGI connection for the tests: our `AgiChannel` on the server side, as in
production, and the test playing Asterisk on the client side, one line at a time.

Test modules get it through the `link` fixture and import these names for type checking only.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
import struct
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import structlog

from ivr.logging import configure_logging
from ivr.transports.agi import LINE_LIMIT, AgiChannel, AgiReply

# Only a broken test waits this long; a passing one never does.
PATIENCE = 2.0


@dataclass
class Asterisk:
    """Asterisk's end of the socket."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def send(self, *lines: str | bytes) -> None:
        for line in lines:
            self.writer.write((line.encode() if isinstance(line, str) else line) + b"\n")
        await self.writer.drain()

    async def command(self) -> str:
        """The next command line we sent, without its newline."""
        line = await asyncio.wait_for(self.reader.readline(), PATIENCE)
        assert line.endswith(b"\n"), f"no complete command line: {line!r}"
        return line[:-1].decode()

    async def rest(self) -> bytes:
        """Everything we write from now until we close the connection."""
        return await asyncio.wait_for(self.reader.read(), PATIENCE)

    def reset(self) -> None:
        """Abort the connection with a TCP RST, as a crashed peer would."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()


@dataclass
class Link:
    """Both ends of one connection, and the channel over ours."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    asterisk: Asterisk
    channel: AgiChannel

    async def run(self, command_line: str, *reply_lines: str | bytes) -> AgiReply:
        """Execute `command_line`, check Asterisk got it, answer with `reply_lines`."""
        task = asyncio.create_task(self.channel.execute(command_line))
        assert await self.asterisk.command() == command_line
        await self.asterisk.send(*reply_lines)
        return await task


@pytest.fixture
async def link() -> AsyncIterator[Link]:
    accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accepted.put((reader, writer))

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0, limit=LINE_LIMIT)
    port = server.sockets[0].getsockname()[1]
    asterisk_reader, asterisk_writer = await asyncio.open_connection("127.0.0.1", port)
    reader, writer = await asyncio.wait_for(accepted.get(), PATIENCE)
    channel = AgiChannel(reader, writer, command_timeout=PATIENCE, hangup_grace=0.05)
    try:
        yield Link(reader, writer, Asterisk(asterisk_reader, asterisk_writer), channel)
    finally:
        writer.close()
        asterisk_writer.close()
        server.close()
        await server.wait_closed()


@dataclass
class CapturedLog:
    """What our logging pipeline wrote while a test ran (JSON lines, debug level)."""

    stream: io.StringIO

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.text.splitlines() if line.strip()]
        return [line for line in lines if name is None or line.get("event") == name]


@pytest.fixture
def captured_log() -> Iterator[CapturedLog]:
    """Route every log line to a buffer with `configure_logging("json", "debug")`; restore after."""
    was_configured = structlog.is_configured()
    saved_config = structlog.get_config()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    quieted = ("httpx", "httpcore", "uvicorn.access", "uvicorn.error")
    saved_levels = {name: logging.getLogger(name).level for name in quieted}
    stream = io.StringIO()
    configure_logging("json", "debug", stream=stream)
    try:
        yield CapturedLog(stream)
    finally:
        if was_configured:
            structlog.configure(**saved_config)
        else:
            structlog.reset_defaults()
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)
