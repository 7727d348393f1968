"""Placing a simulated call: to a FastAGI server over TCP, or into a classic AGI program.

Both build the environment Asterisk would send, run one `SimulatedChannel` over the connection
and report what happened as a `CallResult`. Neither raises for what the service does during
the call (that is in the transcript); a FastAGI server that cannot be reached raises `OSError`
or `TimeoutError` from the connect, as the AGI() application would fail.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ivr.sim._asterisk import READ_LIMIT, SimulatedChannel
from ivr.sim._callers import Caller
from ivr.sim._environment import agi_environment
from ivr.sim._sounds import SoundLibrary
from ivr.sim._transcript import Transcript

__all__ = ["CallResult", "place_call", "run_classic_agi"]

FASTAGI_PORT = 4573
CONNECT_TIMEOUT = 2.0
"""res_agi.c gives up connecting to a FastAGI server after MAX_AGI_CONNECT (2000 ms)."""

_STDERR_LIMIT = 1024 * 1024
_CLOSE_GRACE = 1.0

# launch_script sets these in the environment of a classic AGI program (Debian's paths).
_ASTERISK_PATHS = {
    "AST_CONFIG_DIR": "/etc/asterisk",
    "AST_CONFIG_FILE": "/etc/asterisk/asterisk.conf",
    "AST_MODULE_DIR": "/usr/lib/asterisk/modules",
    "AST_SPOOL_DIR": "/var/spool/asterisk",
    "AST_MONITOR_DIR": "/var/spool/asterisk/monitor",
    "AST_VAR_DIR": "/var/lib/asterisk",
    "AST_DATA_DIR": "/usr/share/asterisk",
    "AST_LOG_DIR": "/var/log/asterisk",
    "AST_AGI_DIR": "/usr/share/asterisk/agi-bin",
    "AST_KEY_DIR": "/usr/share/asterisk/keys",
    "AST_RUN_DIR": "/var/run/asterisk",
}


@dataclass(frozen=True)
class CallResult:
    """How one simulated call went.

    `closed_by_service`: the service closed the connection (or the program ended) rather than the
    simulator giving up after `close_wait`; `close_delay`: seconds from the hang-up to that close
    (None when there was no hang-up before it, e.g. a transfer). `stderr` and `returncode` are the
    classic AGI program's (None for FastAGI).
    """

    transcript: Transcript
    unique_id: str
    closed_by_service: bool
    close_delay: float | None
    duration: float
    stderr: str | None = None
    returncode: int | None = None


async def place_call(
    address: str,
    route: str = "keybox",
    *,
    caller: Caller,
    sounds: SoundLibrary,
    language: str = "en",
    caller_id: str | None = "+15555550100",
    query: Mapping[str, str] | None = None,
    answered: bool = False,
    variables: Mapping[str, str] | None = None,
    agi_env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    close_wait: float = 5.0,
    max_commands: int = 2000,
    turnarounds: list[float] | None = None,
    connect_timeout: float = CONNECT_TIMEOUT,
) -> CallResult:
    """Call the FastAGI server at `address` (`host:port`, port 4573 if left out) on `route`.

    `query` is appended to the script (`agi://host:port/keybox?lang=fr`); `agi_env` replaces or
    adds environment lines; `variables` are channel variables set before AGI ran. `timeout`
    bounds the live call (then the caller gives up), `close_wait` the wait for the service to
    close after a hang-up; `connect_timeout` the connect (Asterisk's own limit by default). See
    `SimulatedChannel` for the rest.
    """
    host, port = _split_address(address)
    environment = agi_environment(
        route, address=address, query=query, language=language, caller_id=caller_id, overrides=agi_env
    )
    started = asyncio.get_running_loop().time()
    async with asyncio.timeout(connect_timeout):
        reader, writer = await asyncio.open_connection(host, port, limit=READ_LIMIT)
    channel = SimulatedChannel(
        reader,
        writer,
        caller=caller,
        sounds=sounds,
        environment=environment,
        answered=answered,
        variables=variables,
        max_commands=max_commands,
        timeout=timeout,
        close_wait=close_wait,
        turnarounds=turnarounds,
    )
    transcript = await channel.run()
    try:
        async with asyncio.timeout(_CLOSE_GRACE):
            await writer.wait_closed()
    except (TimeoutError, OSError):
        pass
    return CallResult(
        transcript=transcript,
        unique_id=environment["agi_uniqueid"],
        closed_by_service=channel.closed_by_service,
        close_delay=channel.close_delay,
        duration=asyncio.get_running_loop().time() - started,
    )


async def run_classic_agi(
    argv: Sequence[str],
    route: str = "keybox",
    *,
    caller: Caller,
    sounds: SoundLibrary,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    language: str = "en",
    caller_id: str | None = "+15555550100",
    answered: bool = False,
    variables: Mapping[str, str] | None = None,
    agi_env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    close_wait: float = 5.0,
    max_commands: int = 2000,
    turnarounds: list[float] | None = None,
) -> CallResult:
    """Run the program `argv` as Asterisk runs an AGI script and play the call over its stdin/stdout.

    The program gets the route, then `args`, as arguments (and as `agi_arg_1`, …); `agi_request` is
    `argv[0]`. Its environment is this process's, plus the `AST_*` paths Asterisk sets, plus
    `env`. Its stderr is collected (up to 1 MiB) for the result. When the channel hangs up the
    program gets SIGHUP, as from Asterisk (unless `variables` set ``AGISIGHUP=no``). A program
    that closed its stdout gets `close_wait` seconds to exit; one still running then, or one the
    simulator gave up on, is killed.
    """
    environment = agi_environment(
        route, program=argv[0], args=args, language=language, caller_id=caller_id, overrides=agi_env
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    process = await asyncio.create_subprocess_exec(
        *argv,
        route,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **_ASTERISK_PATHS, **(env or {})},
        limit=READ_LIMIT,
    )
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    stderr = bytearray()
    stderr_reader = asyncio.create_task(_collect(process.stderr, stderr))
    channel = SimulatedChannel(
        process.stdout,
        process.stdin,
        caller=caller,
        sounds=sounds,
        environment=environment,
        answered=answered,
        variables=variables,
        max_commands=max_commands,
        timeout=timeout,
        close_wait=close_wait,
        turnarounds=turnarounds,
        signal_hangup=lambda: _sighup(process),
    )
    try:
        transcript = await channel.run()
    finally:
        # A program that closed its stdout gets time to exit; one the simulator gave up on does not.
        returncode = await _reap(process, close_wait if channel.closed_by_service else 0.0)
        try:
            async with asyncio.timeout(_CLOSE_GRACE):
                await stderr_reader
        except TimeoutError:
            pass  # a grandchild still holds stderr open; keep what came
    return CallResult(
        transcript=transcript,
        unique_id=environment["agi_uniqueid"],
        closed_by_service=channel.closed_by_service,
        close_delay=channel.close_delay,
        duration=loop.time() - started,
        stderr=stderr.decode("utf-8", errors="replace"),
        returncode=returncode,
    )


def _split_address(address: str) -> tuple[str, int]:
    """`host:port`, `host` or `[v6]:port` → host and port."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port = rest.removeprefix(":")
    elif address.count(":") == 1:
        host, _, port = address.partition(":")
    else:
        host, port = address, ""  # a host name, or a bare IPv6 address
    return host, int(port) if port else FASTAGI_PORT


async def _collect(stream: asyncio.StreamReader, into: bytearray) -> None:
    while chunk := await stream.read(64 * 1024):
        into += chunk[: max(0, _STDERR_LIMIT - len(into))]


def _sighup(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        try:
            process.send_signal(signal.SIGHUP)
        except ProcessLookupError:  # it has just ended
            pass


async def _reap(process: asyncio.subprocess.Process, grace: float) -> int:
    try:
        async with asyncio.timeout(grace):
            return await process.wait()
    except TimeoutError:
        process.kill()
        return await process.wait()
