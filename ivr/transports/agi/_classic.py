"""Classic AGI: Asterisk runs ``ivr agi <route>`` and talks AGI over its stdin and stdout.

This replaces pyst2 for classic AGI. pyst2 0.5.1 prints the whole AGI environment (caller id
included) to stderr, which lands in Asterisk's log; blocks forever on a one-line ``520``
while waiting for a usage text that never comes; and drops GET DATA's ``(timeout)`` flag.
Our own protocol layer (`read_environment`, `AgiChannel`) has none of these defects, and the
call runs through the same `AgiCall` as a FastAGI call.

What reaches stderr goes through our redacting logger only, never the environment or the
caller id. Asterisk sends SIGHUP when the caller hangs up (unless ``AGISIGHUP=no``): it is
taken as a hang-up (`AgiCall.mark_hung_up`: the flow's next command raises
`ChannelHangupError`), never as a reason to die in the middle of a write. stdout *is* the AGI
channel: nothing else in the process may print to it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

import structlog

from ivr.errors import AgiProtocolError
from ivr.logging import bind_call, configure_logging, get_logger
from ivr.transports.agi._call import AgiCall
from ivr.transports.agi._server import CallHandler
from ivr.transports.agi._stream import LINE_LIMIT, AgiChannel, read_environment

__all__ = ["run_classic_agi"]

_log = get_logger(__name__)
_STDIN, _STDOUT = 0, 1


async def run_classic_agi(handler: CallHandler, argv_route: str | None = None) -> Any:
    """Run one classic AGI call over this process's stdin and stdout; return what `handler`
    returned (`None` when the environment never came or the handler raised).

    `argv_route` is the route the program was started with (``ivr agi keybox`` → ``keybox``);
    without it the route is the first AGI argument (``agi_arg_1``). stdin and stdout must be
    pipes (or sockets, or terminals), as Asterisk gives them. When logging was not configured,
    it is configured here to stderr (JSON), so that no log line can reach stdout.
    """
    loop = asyncio.get_running_loop()
    call: AgiCall | None = None
    hangup_signalled = False

    def on_sighup() -> None:
        nonlocal hangup_signalled
        hangup_signalled = True
        _log.info("agi.hangup_signal")
        if call is not None:
            call.mark_hung_up()

    sighup_handled = _handle_sighup(loop, on_sighup)
    transports: list[asyncio.BaseTransport] = []
    try:
        if not structlog.is_configured():
            configure_logging("json", "info", stream=sys.stderr)
        if sys.stdout is not None:
            sys.stdout.flush()
        reader = asyncio.StreamReader(limit=LINE_LIMIT)
        read_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(_STDIN, "rb", buffering=0, closefd=False)
        )
        transports.append(read_transport)
        write_transport, write_protocol = await loop.connect_write_pipe(
            _WritePipeProtocol, os.fdopen(_STDOUT, "wb", buffering=0, closefd=False)
        )
        transports.append(write_transport)
        writer = asyncio.StreamWriter(write_transport, write_protocol, reader, loop)
        try:
            env = await read_environment(reader)
        except AgiProtocolError as exc:
            _log.warning("agi.bad_environment", error=str(exc))
            return None
        call = AgiCall(AgiChannel(reader, writer), env, route=argv_route)
        if hangup_signalled:
            call.mark_hung_up()
        with bind_call(call.call_id, route=call.route):
            try:
                return await handler(call)
            except Exception:  # noqa: BLE001 - a failing handler must not take the AGI process down
                _log.exception("agi.handler_failed")
                return None
            finally:
                await call.finish()
    finally:
        for transport in transports:
            transport.close()
        if transports:
            await asyncio.sleep(0)  # let the transports finish closing before the loop may end
        for fd in (_STDIN, _STDOUT):
            try:
                os.set_blocking(fd, True)
            except OSError:
                pass
        if sighup_handled:
            loop.remove_signal_handler(signal.SIGHUP)
            # The call is over but the process may still be writing its record: a late SIGHUP
            # must not kill it.
            signal.signal(signal.SIGHUP, signal.SIG_IGN)


class _WritePipeProtocol(asyncio.streams.FlowControlMixin, asyncio.Protocol):
    """The protocol behind stdout's `StreamWriter` (flow control for `drain`, nothing to read)."""


def _handle_sighup(loop: asyncio.AbstractEventLoop, callback: Any) -> bool:
    try:
        loop.add_signal_handler(signal.SIGHUP, callback)
    except (ValueError, RuntimeError, NotImplementedError):  # not the main thread, or no SIGHUP
        return False
    return True
