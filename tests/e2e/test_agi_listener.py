"""The FastAGI listener of the running service, met by peers that are not well-behaved Asterisks:
silent sockets, peers from outside IVR_AGI_ALLOW, a reply no Asterisk sends."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from support.line import running_line

from ivr.records import Outcome
from ivr.sim import agi_environment

PATIENCE = 2.0
HAPPY = "123456#2580#19"


async def silent_connections(port: int, count: int) -> list[asyncio.StreamWriter]:
    return [(await asyncio.open_connection("127.0.0.1", port))[1] for _ in range(count)]


async def place_by_hand(address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, dict[str, str]]:
    """Connect as Asterisk does and send the environment; the test plays Asterisk from there."""
    host, _, port = address.partition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    environment = agi_environment("keybox", address=address)
    writer.write("".join(f"{key}: {value}\n" for key, value in environment.items()).encode() + b"\n")
    return reader, writer, environment


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(PATIENCE):
        while not condition():
            await asyncio.sleep(0.001)


async def test_silent_sockets_do_not_count_against_max_calls(tmp_path: Path) -> None:
    async with running_line(tmp_path, max_calls=1) as line:
        silent = await silent_connections(line.service.agi.port, 5)
        await until(lambda: line.service.agi.pending == 5)
        assert line.service.active == 0

        call = await line.call(HAPPY)
        for writer in silent:
            writer.close()

    assert call.record.outcome is Outcome.UPDATE_CODE_READ  # not refused as over capacity


async def test_a_silent_socket_is_closed_after_the_environment_timeout(tmp_path: Path) -> None:
    async with running_line(tmp_path, agi_env_timeout=0.2) as line:
        reader, writer = await asyncio.open_connection("127.0.0.1", line.service.agi.port)
        started = asyncio.get_running_loop().time()
        assert await asyncio.wait_for(reader.read(), PATIENCE) == b""
        assert asyncio.get_running_loop().time() - started < 1.0
        writer.close()


async def test_a_peer_outside_agi_allow_is_never_served(tmp_path: Path) -> None:
    async with running_line(tmp_path, agi_allow="192.0.2.0/24") as line:
        reader, writer, environment = await place_by_hand(line.address)
        assert await asyncio.wait_for(reader.read(), PATIENCE) == b""  # not one command
        writer.close()
        assert await line.service.services.records.get(environment["agi_uniqueid"]) is None
        assert line.backend_requests() == 0


async def test_a_reply_with_thousands_of_digits_ends_the_call_as_a_protocol_error(tmp_path: Path) -> None:
    async with running_line(tmp_path) as line:
        reader, writer, environment = await place_by_hand(line.address)
        commands = []
        while line_read := await asyncio.wait_for(reader.readline(), PATIENCE):
            command = line_read.decode().strip()
            commands.append(command)
            if command.startswith("GET DATA"):
                writer.write(b"200 result=" + b"7" * 5000 + b"\n")
            else:
                writer.write(b"200 result=6\n" if command == "CHANNEL STATUS" else b"200 result=0\n")
        writer.close()  # the service closed first: the call is over, its record kept
        record = await line.service.services.records.get(environment["agi_uniqueid"])

    assert commands[-1].startswith("GET DATA keybox/enter-key-number")  # nothing after it
    assert record is not None
    assert (record.outcome, record.detail) == (Outcome.ERROR, "channel protocol error")
