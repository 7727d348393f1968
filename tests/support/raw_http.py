"""A KimVoice that misbehaves on a real socket: scripted raw HTTP answers, for the client's tests
of broken bodies, retries and hangs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import jwt
import pytest

from ivr.backends.kimvoice import KimVoiceClient

TOKEN = jwt.encode({"exp": 4_000_000_000, "nbf": 0}, "k" * 32, algorithm="HS256")


def http(status: str, body: bytes, *, length: int | None = None, content_type: str = "application/json") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body) if length is None else length}\r\n\r\n"
    )
    return head.encode() + body


HANG = b""
"""An answer that never comes: the connection stays open, silent, until the client gives up."""
CLOSE = b"close"
"""No answer: the connection is closed at once (a reset, as the client sees it)."""


class RawServer:
    """Answers each request on a real socket with the bytes `answer(request_line)` returns
    (`HANG`: none, ever; `CLOSE`: the connection closed instead).

    With `close_after`, it closes the connection after each answer (to cut a body short).
    """

    def __init__(self, answer: Callable[[str], bytes], close_after: bool) -> None:
        self.answer = answer
        self.close_after = close_after
        self.requests: list[str] = []

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length")), 0)
                await reader.readexactly(length)
                line = head.split(b"\r\n")[0].decode()
                self.requests.append(line)
                answer = self.answer(line)
                if answer == CLOSE:
                    break
                if answer == HANG:
                    await reader.read()  # until the client closes its end
                    break
                writer.write(answer)
                await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the client went, or the test ended
        finally:
            writer.close()


@pytest.fixture
def serve() -> Callable[[Callable[[str], bytes]], object]:
    servers: list[asyncio.Server] = []

    async def start(answer: Callable[[str], bytes], close_after: bool = False) -> tuple[str, RawServer]:
        raw = RawServer(answer, close_after)
        server = await asyncio.start_server(raw._handle, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}", raw

    yield start
    for server in servers:
        server.close()


def with_token(api_answer: bytes, token_answer: bytes | None = None) -> Callable[[str], bytes]:
    token = token_answer or http("200 OK", f'"{TOKEN}"'.encode())
    return lambda line: token if "LogOn" in line else api_answer


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[[str], KimVoiceClient]]:
    clients: list[KimVoiceClient] = []

    def make(url: str) -> KimVoiceClient:
        clients.append(KimVoiceClient(url, "id", "secret", timeout=2, backoff=0.01))
        return clients[-1]

    yield make
    for c in clients:
        await c.aclose()


