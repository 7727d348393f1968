"""`run_classic_agi` in a real child process, the test playing Asterisk over its stdin/stdout."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PATIENCE = 10.0  # a child process imports the package first

CHILD = '''
import asyncio
import sys

from ivr.transports.agi import run_classic_agi
from ivr.errors import ChannelHangupError


async def handler(call):
    try:
        await call.answer()
        await call.play("keybox/welcome")
        entry = await call.read_digits("keybox/enter-pin", 6000, 4)
        await call.set_variable("IVR_SEEN", f"{call.route}|{call.caller_id}|{len(entry.digits)}|{call.variables}")
        await call.hangup()
        return "done"
    except ChannelHangupError:
        return "caller_hangup"


# Logging is left unconfigured on purpose: run_classic_agi must keep it off stdout.
outcome = asyncio.run(run_classic_agi(handler, sys.argv[1] if len(sys.argv) > 1 else None))
sys.exit({"done": 0, "caller_hangup": 3}.get(outcome, 1))
'''

CALLER_ID = "5145550123"
CALLER_NAME = "Margaret Secretname"
ENV = [
    "agi_request: /usr/local/bin/ivr-agi",
    "agi_channel: PJSIP/trunk-00000007",
    "agi_language: fr",
    "agi_type: PJSIP",
    "agi_uniqueid: 1717000000.77",
    f"agi_callerid: {CALLER_ID}",
    f"agi_calleridname: {CALLER_NAME}",
    "agi_context: keybox-in",
    "agi_extension: s",
    "agi_arg_1: keybox",
    "agi_arg_2: job-9",
]


@dataclass
class Child:
    process: asyncio.subprocess.Process
    stderr_seen: bytes = b""

    async def send(self, *lines: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("".join(line + "\n" for line in lines).encode())
        await self.process.stdin.drain()

    async def send_env(self, lines: list[str] = ENV) -> None:
        await self.send(*lines, "")

    async def expect(self, command: str, *replies: str) -> None:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), PATIENCE)
        assert line == command.encode() + b"\n"
        await self.send(*replies)

    async def stderr_until(self, event: str) -> None:
        assert self.process.stderr is not None
        async with asyncio.timeout(PATIENCE):
            while True:
                line = await self.process.stderr.readline()
                assert line, f"stderr ended before {event}"
                self.stderr_seen += line
                if json.loads(line).get("event") == event:
                    return

    async def finish(self) -> tuple[int, bytes, bytes]:
        """Wait for the child to exit; its return code, the rest of stdout, all of stderr."""
        assert self.process.stdout is not None and self.process.stderr is not None
        rest, errors = await asyncio.wait_for(
            asyncio.gather(self.process.stdout.read(), self.process.stderr.read()), PATIENCE
        )
        code = await asyncio.wait_for(self.process.wait(), PATIENCE)
        return code, rest, self.stderr_seen + errors


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "agi_child.py"
    path.write_text(CHILD)
    return path


@pytest.fixture
async def spawn(script: Path) -> AsyncIterator[object]:
    children: list[asyncio.subprocess.Process] = []

    async def start(*args: str) -> Child:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(script), *args,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        children.append(process)
        return Child(process)

    yield start
    for process in children:
        if process.returncode is None:
            process.kill()
            await process.wait()


def assert_private(stderr: bytes) -> None:
    text = stderr.decode("utf-8", "replace")
    assert CALLER_ID not in text and CALLER_NAME not in text
    assert "agi_" not in text and "PJSIP" not in text
    for line in text.splitlines():  # only our JSON log lines
        json.loads(line)


async def test_a_whole_call_over_stdin_and_stdout(spawn) -> None:  # type: ignore[no-untyped-def]
    child: Child = await spawn("keybox")
    await child.send_env()

    await child.expect("CHANNEL STATUS", "200 result=4")
    await child.expect("ANSWER", "200 result=0")
    await child.expect('STREAM FILE keybox/welcome ""', "200 result=0 endpos=8000")
    await child.expect("GET DATA keybox/enter-pin 6000 4", "200 result=4821")
    await child.expect(
        f"SET VARIABLE IVR_SEEN \"keybox|{CALLER_ID}|4|{{'arg2': 'job-9'}}\"", "200 result=1"
    )
    await child.expect("HANGUP", "200 result=1")
    code, rest, stderr = await child.finish()

    assert (code, rest) == (0, b"")
    assert_private(stderr)
    assert b"4821" not in stderr


async def test_the_route_comes_from_agi_arg_1_without_a_program_argument(spawn) -> None:  # type: ignore[no-untyped-def]
    child: Child = await spawn()
    await child.send_env([line for line in ENV if not line.startswith("agi_arg_2")])

    await child.expect("CHANNEL STATUS", "200 result=6")
    await child.expect('STREAM FILE keybox/welcome ""', "200 result=-1 endpos=0")
    await child.expect("CHANNEL STATUS", "200 result=6")  # a missing sound: logged, the call goes on
    await child.expect("GET DATA keybox/enter-pin 6000 4", "200 result=12 (timeout)")
    await child.expect(f"SET VARIABLE IVR_SEEN keybox|{CALLER_ID}|2|{{}}", "200 result=1")
    await child.expect("HANGUP", "200 result=1")
    code, rest, stderr = await child.finish()

    assert (code, rest) == (0, b"")
    assert_private(stderr)
    events = [json.loads(line) for line in stderr.splitlines()]
    [missing] = [e for e in events if e["event"] == "agi.sound_missing"]
    assert (missing["sound"], missing["language"], missing["call_id"]) == ("keybox/welcome", "fr", "1717000000.77")


async def test_it_ends_on_eof(spawn) -> None:  # type: ignore[no-untyped-def]
    child: Child = await spawn("keybox")
    await child.send_env()
    await child.expect("CHANNEL STATUS")
    assert child.process.stdin is not None
    child.process.stdin.close()  # Asterisk went away

    code, rest, stderr = await child.finish()

    assert (code, rest) == (3, b"")  # the handler saw a hang-up; nothing more was written
    assert_private(stderr)


async def test_eof_before_the_environment_ends(spawn) -> None:  # type: ignore[no-untyped-def]
    child: Child = await spawn("keybox")
    await child.send(*ENV[:4])  # no blank line
    assert child.process.stdin is not None
    child.process.stdin.close()

    code, rest, stderr = await child.finish()

    assert (code, rest) == (1, b"")
    assert_private(stderr)
    assert any(json.loads(line)["event"] == "agi.bad_environment" for line in stderr.splitlines())


async def test_sighup_is_a_hang_up_not_a_death(spawn) -> None:  # type: ignore[no-untyped-def]
    child: Child = await spawn("keybox")
    await child.send_env()
    await child.expect("CHANNEL STATUS", "200 result=6")
    assert child.process.stdout is not None
    assert await asyncio.wait_for(child.process.stdout.readline(), PATIENCE) == b'STREAM FILE keybox/welcome ""\n'

    child.process.send_signal(signal.SIGHUP)
    await child.stderr_until("agi.hangup_signal")
    await child.send("200 result=-1 endpos=0")  # what Asterisk answers once the caller is gone

    code, rest, stderr = await child.finish()
    assert (code, rest) == (3, b"")  # no CHANNEL STATUS, no HANGUP: the caller is known gone
    assert_private(stderr)
