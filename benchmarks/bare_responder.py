"""A bare asyncio FastAGI responder: the floor this machine allows for one call's AGI traffic.

Per connection it reads the AGI environment up to the blank line, then sends the same twelve
commands a complete update-code call of `ivr serve` sends (same verbs, same shape, a fixed code
instead of a KimVoice answer), reads each reply, and closes. No flow, no backend, no logging.

Like the service's FastAGI server, it closes the socket itself and breaks the CPython 3.11
transport's reference cycle (`_read_ready_cb`), and freezes the start-up heap out of the
collector, so the floor is not inflated by the cyclic garbage collector (performance notes).

    python3 benchmarks/bare_responder.py --host 127.0.0.1 --port 4599
"""

from __future__ import annotations

import argparse
import asyncio
import gc

# The command lines of one update-code call, as `ivr serve` sends them (see benchmarks/README.md).
COMMANDS = [
    line.encode() + b"\n"
    for line in (
        "CHANNEL STATUS",
        "ANSWER",
        'STREAM FILE keybox/welcome ""',
        "GET DATA keybox/enter-key-number 6000 10",
        "GET DATA keybox/enter-pin 6000 4",
        "GET DATA keybox/choose-code-type 6000 1",
        'STREAM FILE keybox/your-update-code-is ""',
        'SAY DIGITS 2198067 ""',
        'STREAM FILE keybox/after-code-menu ""',  # stands for the TTS instructions
        "GET DATA keybox/after-code-menu 6000 1",
        'STREAM FILE keybox/goodbye ""',
        "HANGUP",
    )
]
BARE_CODE = "2198067"
TIMEOUT = 60.0  # bound on one whole session


async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        async with asyncio.timeout(TIMEOUT):
            while (await reader.readuntil(b"\n")).strip():  # the environment, to the blank line
                pass
            for command in COMMANDS:
                writer.write(command)
                while not (await reader.readuntil(b"\n")).startswith(b"200"):  # skip a HANGUP line
                    pass
    except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
        pass  # the peer went away (or a readiness probe connected and closed)
    finally:
        transport = writer.transport
        transport.close()
        if getattr(transport, "_read_ready_cb", None) is not None:
            transport._read_ready_cb = None  # type: ignore[attr-defined]  # break the self-cycle


async def main(host: str, port: int) -> None:
    server = await asyncio.start_server(session, host, port, backlog=4096)
    gc.freeze()
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4599)
    options = parser.parse_args()
    try:
        asyncio.run(main(options.host, options.port))
    except KeyboardInterrupt:
        pass
