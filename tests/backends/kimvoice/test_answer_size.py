"""KimVoice answers are bounded in size: a huge or compressed body is a backend failure, not a crash.

A misbehaving server on loopback streams its body (never built in memory); the process's RSS is
sampled while it writes, so a client that reads the body whole shows up as growth.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Literal

import httpx
import jwt
import pytest

from ivr.backends.kimvoice import KimVoiceClient
from ivr.errors import BadResponseError
from ivr.http_answers import MAX_ANSWER_BYTES

TOKEN = jwt.encode({"exp": 4_000_000_000, "nbf": 0}, "k" * 32, algorithm="HS256")
MB = 1 << 20
Framing = Literal["content-length", "chunked", "until-close"]


def rss() -> int:
    """This process's resident set size, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


class HugeAnswers:
    """Answers LogOn with a token, and every other request with a HealthCheck whose message
    is `size` bytes long, sent in 1 MiB writes of one reused buffer; records the peak RSS."""

    def __init__(self, size: int, framing: Framing) -> None:
        self.size, self.framing = size, framing
        self.peak = rss()
        self.heads: list[bytes] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.url = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                if b"LogOn" in head:
                    body = f'"{TOKEN}"'.encode()
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                    await reader.readexactly(int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0]))
                    await writer.drain()
                    continue
                await self._huge(writer)
                return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the client hung up (what a bounded reader does), or the test is over
        finally:
            writer.close()

    async def _huge(self, writer: asyncio.StreamWriter) -> None:
        prefix, suffix = b'{"OperationalMode": "Normal", "Message": "', b'"}'
        length = len(prefix) + self.size + len(suffix)
        framing = {"content-length": b"Content-Length: %d\r\n" % length,
                   "chunked": b"Transfer-Encoding: chunked\r\n", "until-close": b"Connection: close\r\n"}
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + framing[self.framing] + b"\r\n")
        block = memoryview(b"a" * MB)
        parts = [prefix, *[block] * (self.size // MB), block[:self.size % MB], suffix]
        for part in parts:
            if self.framing == "chunked":
                writer.write(b"%x\r\n" % len(part))
                writer.write(part)
                writer.write(b"\r\n")
            else:
                writer.write(part)
            await writer.drain()
            self.peak = max(self.peak, rss())
        if self.framing == "chunked":
            writer.write(b"0\r\n\r\n")
            await writer.drain()


@pytest.fixture
async def huge() -> AsyncIterator[Callable[[int, Framing], Awaitable[HugeAnswers]]]:
    servers: list[tuple[asyncio.Server, HugeAnswers]] = []

    async def start(size: int, framing: Framing) -> HugeAnswers:
        answers = HugeAnswers(size, framing)
        server = await asyncio.start_server(answers.handle, "127.0.0.1", 0)
        servers.append((server, answers))
        answers.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        return answers

    yield start
    for server, answers in servers:
        server.close()
        for task in answers.tasks:
            task.cancel()
        await asyncio.gather(*answers.tasks, return_exceptions=True)


def client(url: str, transport: str) -> KimVoiceClient:
    """Our keep-alive transport (the default), or httpx's own (what runs behind a proxy)."""
    own = httpx.AsyncHTTPTransport() if transport == "httpx" else None
    return KimVoiceClient(url, "id", "secret", timeout=10, backoff=0.01, transport=own)


@pytest.mark.parametrize("framing", ["content-length", "chunked", "until-close"])
@pytest.mark.parametrize("transport", ["keep-alive", "httpx"])
async def test_a_300_mb_answer_is_a_backend_failure_and_memory_stays_flat(huge, transport: str,
                                                                          framing: Framing) -> None:
    server = await huge(300 * MB, framing)
    before = rss()
    async with client(server.url, transport) as kimvoice:
        with pytest.raises(BadResponseError, match="HealthCheck"):
            await kimvoice.health_check()
    grown = max(server.peak, rss()) - before
    assert grown < 100 * MB, f"RSS grew by {grown / MB:.0f} MB"
    assert sum(b"HealthCheck" in head for head in server.heads) == 1, "a refused answer is not asked again"


async def test_an_answer_just_under_the_bound_is_read(huge) -> None:
    server = await huge(MAX_ANSWER_BYTES - 100, "content-length")
    async with client(server.url, "keep-alive") as kimvoice:
        health = await kimvoice.health_check()
    assert health.message is not None and len(health.message) == MAX_ANSWER_BYTES - 100


@pytest.mark.parametrize("transport", ["keep-alive", "httpx"])
async def test_a_compressed_answer_is_refused_unpacked(transport: str) -> None:
    """50 KB of gzip unpacks to 50 MB: the client asks for identity and refuses anything else."""
    bomb = gzip.compress(b'{"OperationalMode": "Normal", "Message": "' + b"0" * (50 * MB) + b'"}')
    heads: list[bytes] = []
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                heads.append(head)
                if b"LogOn" in head:
                    await reader.readexactly(int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0]))
                    body = f'"{TOKEN}"'.encode()
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                else:
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
                                 b"Content-Length: %d\r\n\r\n%s" % (len(bomb), bomb))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        async with client(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", transport) as kimvoice:
            with pytest.raises(BadResponseError, match="gzip"):
                await kimvoice.health_check()
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert all(b"accept-encoding: identity" in head.lower() for head in heads)
