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

from ivr.transports.agi import _commands as commands
from ivr.transports.agi._call import AgiCall
from ivr.transports.agi._classic import run_classic_agi
from ivr.transports.agi._env import AgiEnvironment
from ivr.transports.agi._replies import AgiReply, Hangup, ReplyParser
from ivr.transports.agi._server import FastAgiServer
from ivr.transports.agi._stream import (
    COMMAND_TIMEOUT,
    ENVIRONMENT_TIMEOUT,
    HANGUP_GRACE,
    LINE_LIMIT,
    AgiChannel,
    AgiWriter,
    read_environment,
)

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
