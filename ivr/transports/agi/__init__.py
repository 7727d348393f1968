"""The AGI protocol, shared by the FastAGI server (a socket) and classic AGI (stdin/stdout).

Parsing is free of I/O (`AgiEnvironment`, `ReplyParser`, `commands`); `AgiChannel` and
`read_environment` run it over asyncio streams. Typical use::

    env = await read_environment(reader)
    channel = AgiChannel(reader, writer)
    reply = await channel.execute(commands.get_data("keybox/enter-pin", 6000, 4))

On top of it, `AgiCall` is the flow's `Call` over one session, `FastAgiServer` runs a handler
for each FastAGI connection, and `run_classic_agi` runs one over stdin/stdout.
"""

from __future__ import annotations

from ivr.agi import _commands as commands
from ivr.agi._call import AgiCall
from ivr.agi._classic import run_classic_agi
from ivr.agi._env import AgiEnvironment
from ivr.agi._replies import AgiReply, Hangup, ReplyParser
from ivr.agi._stream import (
    COMMAND_TIMEOUT,
    ENVIRONMENT_TIMEOUT,
    HANGUP_GRACE,
    LINE_LIMIT,
    AgiChannel,
    AgiWriter,
    read_environment,
)
from ivr.agi._server import FastAgiServer

__all__ = [
    "COMMAND_TIMEOUT",
    "ENVIRONMENT_TIMEOUT",
    "HANGUP_GRACE",
    "LINE_LIMIT",
    "AgiCall",
    "AgiChannel",
    "AgiEnvironment",
    "AgiReply",
    "AgiWriter",
    "FastAgiServer",
    "Hangup",
    "ReplyParser",
    "commands",
    "read_environment",
    "run_classic_agi",
]
