"""A manager client that speaks raw AMI text to the simulated Asterisk, as a test wants to see
the wire: messages as lists of (header, value), with patience for what must arrive and a short
watch for what must not."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from ivr.sim import SimulatedAmi

PATIENCE = 3.0  # only a broken test waits this long
QUIET = 0.2  # how long "nothing arrives" is watched for

Message = list[tuple[str, str]]


def value(message: Message, key: str) -> str | None:
    return next((v for k, v in message if k == key), None)


class AmiClient:
    """A manager connection speaking raw AMI text; every message read is kept in `seen`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, banner: bytes) -> None:
        self.reader, self.writer, self.banner = reader, writer, banner
        self.seen: list[Message] = []
        self._read = 0  # messages of `seen` already returned by `next`

    @classmethod
    async def connect(cls, ami: SimulatedAmi) -> AmiClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", ami.port)
        banner = await asyncio.wait_for(reader.readline(), PATIENCE)
        return cls(reader, writer, banner)

    def send(self, *headers: tuple[str, str]) -> None:
        self.writer.write("".join(f"{k}: {v}\r\n" for k, v in headers).encode() + b"\r\n")

    async def next(self) -> Message:
        """The next message the simulator sent."""
        if self._read == len(self.seen):
            self.seen.append(await asyncio.wait_for(self._message(), PATIENCE))
        self._read += 1
        return self.seen[self._read - 1]

    async def _message(self) -> Message:
        message: Message = []
        while True:
            line = await self.reader.readline()
            assert line.endswith(b"\r\n"), f"the simulator closed the connection (after {message!r}, {line!r})"
            if line == b"\r\n":
                return message
            key, _, rest = line.decode().rstrip("\r\n").partition(": ")
            message.append((key, rest))

    async def until(self, predicate: Callable[[Message], bool]) -> Message:
        while not predicate(message := await self.next()):
            pass
        return message

    async def response(self, action_id: str) -> Message:
        return await self.until(lambda m: "Response" in dict(m) and value(m, "ActionID") == action_id)

    async def event(self, name: str, **headers: str) -> Message:
        return await self.until(
            lambda m: value(m, "Event") == name and all(value(m, k) == v for k, v in headers.items()))

    async def action(self, name: str, action_id: str, *headers: tuple[str, str]) -> Message:
        self.send(("Action", name), ("ActionID", action_id), *headers)
        return await self.response(action_id)

    async def login(self, secret: str = "sim-secret", events: str = "on") -> Message:
        """Log in; a successful login with events on also reads the FullyBooted event after it."""
        reply = await self.action("Login", "login", ("Username", "keybox"), ("Secret", secret), ("Events", events))
        if value(reply, "Message") == "Authentication accepted" and events == "on":
            await self.event("FullyBooted")
        return reply

    async def closed(self) -> bool:
        """True once the simulator has closed the connection (whatever it sent before)."""
        try:
            await asyncio.wait_for(self.reader.read(), PATIENCE)
        except ConnectionError:
            pass
        return True

    async def quiet(self) -> bool:
        """True if nothing arrives for `QUIET` seconds and the connection stays open."""
        try:
            data = await asyncio.wait_for(self.reader.read(1), QUIET)
        except TimeoutError:
            return True
        return False if data else pytest.fail("the connection was closed")

    def close(self) -> None:
        self.writer.close()
