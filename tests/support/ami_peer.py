"""A scripted AMI peer for the wrapper's tests: a real TCP server on loopback that greets like
Asterisk, answers Login and Ping, lets a test script every other answer, and keeps every action
it read. tests/outbound/platforms/test_ami_peer.py shows it frames the wire as Asterisk does."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

EOL = "\r\n"
SECRET = "s3cret-ami-pw"


@dataclass
class Received:
    """One action as the peer read it: headers in order (repeats kept), and on which connection."""

    connection: int
    headers: list[tuple[str, str]]

    def get(self, name: str) -> str:
        return next((v for k, v in self.headers if k.lower() == name.lower()), "")

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def name(self) -> str:
        return self.get("Action").lower()


@dataclass
class Connection:
    index: int
    writer: asyncio.StreamWriter
    logged_in: bool = False

    def send(self, *headers: tuple[str, str]) -> None:
        if not self.writer.is_closing():
            self.writer.write((EOL.join(f"{k}: {v}" for k, v in headers) + EOL + EOL).encode())

    def answer(self, action: Received, response: str = "Success", **headers: str) -> None:
        self.send(("Response", response), ("ActionID", action.get("ActionID")), *headers.items())

    def drop(self) -> None:
        self.writer.close()


Handler = Callable[[Connection, Received], Awaitable[None] | None]


@dataclass
class ScriptedAmi:
    secret: str = SECRET
    silent_after_login: bool = False
    """Once logged in, answer nothing and keep the socket open: a half-open connection."""
    hold_login: asyncio.Event | None = None
    """When set, the Login's answer waits for it."""
    handlers: dict[str, Handler] = field(default_factory=dict)
    listen_port: int = 0
    received: list[Received] = field(default_factory=list)
    connections: list[Connection] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def __aenter__(self) -> ScriptedAmi:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.listen_port)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for connection in self.connections:
            connection.writer.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await task

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def actions(self, name: str) -> list[Received]:
        return [a for a in self.received if a.name == name.lower()]

    async def wait_until(self, check: Callable[[], bool], timeout: float = 5.0) -> None:
        """Until `check()` holds, re-checked at each action read and each connection."""
        async with asyncio.timeout(timeout):
            while not check():
                self._changed.clear()
                await self._changed.wait()

    def _signal(self) -> None:
        self._changed.set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        connection = Connection(len(self.connections) + 1, writer)
        self.connections.append(connection)
        self._signal()
        writer.write(b"Asterisk Call Manager/9.0.0" + EOL.encode())
        try:
            while True:
                block = await reader.readuntil((EOL + EOL).encode())
                lines = [line for line in block.decode().split(EOL) if line]
                headers = [tuple(line.split(": ", 1)) for line in lines if ": " in line]
                action = Received(connection.index, [(k, v) for k, v in headers])
                self.received.append(action)
                self._signal()
                await self._answer(connection, action)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:
            pass  # stopped: asyncio's stream callback would report a cancelled handler as an error
        finally:
            writer.close()
            self._tasks.discard(task)

    async def _answer(self, connection: Connection, action: Received) -> None:
        if action.name == "login":
            if self.hold_login is not None:
                await self.hold_login.wait()
            if action.get("Secret") == self.secret:
                connection.logged_in = True
                connection.answer(action, Message="Authentication accepted")
                connection.send(("Event", "FullyBooted"), ("Privilege", "system,all"), ("Status", "Fully Booted"))
            else:
                connection.answer(action, "Error", Message="Authentication failed")
            return
        if self.silent_after_login:
            return
        handler = self.handlers.get(action.name)
        if handler is not None:
            result = handler(connection, action)
            if result is not None:
                await result
        elif action.name == "ping":
            connection.answer(action, Ping="Pong", Timestamp="1764680000.000000")
        elif action.name == "coreshowchannels":
            connection.answer(action, EventList="start", Message="Channels will follow")
            connection.send(("Event", "CoreShowChannelsComplete"), ("ActionID", action.get("ActionID")),
                            ("EventList", "Complete"), ("ListItems", "0"))
        else:
            connection.answer(action)
