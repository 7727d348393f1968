"""The client against a misbehaving server: broken answers become clear errors, never crashes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import jwt
import pytest

from ivr.backends.kimvoice import KimVoiceClient
from ivr.errors import AuthenticationError, BadResponseError, UnavailableError

TOKEN = jwt.encode({"exp": 4_000_000_000, "nbf": 0}, "k" * 32, algorithm="HS256")


def http(status: str, body: bytes, *, length: int | None = None, content_type: str = "application/json") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body) if length is None else length}\r\n\r\n"
    )
    return head.encode() + body


class RawServer:
    """Answers each request on a real socket with the bytes `answer(request_line)` returns.

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
                writer.write(self.answer(line))
                await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
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


async def test_malformed_json_is_a_bad_response(serve, make_client) -> None:
    url, _ = await serve(with_token(http("200 OK", b'{"operationalMode": "Normal"')))
    with pytest.raises(BadResponseError, match="HealthCheck answered with a body that is not a HealthCheck"):
        await make_client(url).health_check()


async def test_wrong_shape_is_a_bad_response(serve, make_client) -> None:
    url, _ = await serve(with_token(http("200 OK", b'{"updateCode": ["1"]}')))
    with pytest.raises(BadResponseError, match="updateCode"):
        await make_client(url).get_update_code(123456, 1, 1, 1)


async def test_truncated_body_is_unavailable_after_retries(serve, make_client) -> None:
    truncated = http("200 OK", b'{"operationalMode": "Nor', length=200)
    url, raw = await serve(with_token(truncated), close_after=True)
    with pytest.raises(UnavailableError, match="closed before a complete answer"):
        await make_client(url).health_check()
    assert sum("HealthCheck" in r for r in raw.requests) == 3


async def test_html_502_from_a_proxy_is_unavailable(serve, make_client) -> None:
    url, raw = await serve(with_token(http("502 Bad Gateway", b"<html>bad gateway</html>", content_type="text/html")))
    with pytest.raises(UnavailableError, match="HTTP 502"):
        await make_client(url).health_check()
    assert sum("HealthCheck" in r for r in raw.requests) == 3


async def test_404_without_api_error_is_unavailable_not_retried(serve, make_client) -> None:
    url, raw = await serve(with_token(http("404 Not Found", b"")))
    with pytest.raises(UnavailableError, match="404 without an ApiError"):
        await make_client(url).identify_key_holder(123456)
    assert sum("Identify" in r for r in raw.requests) == 1


async def test_token_as_bare_text_is_accepted(serve, make_client) -> None:
    url, _ = await serve(with_token(http("200 OK", b'{"OperationalMode": "Normal", "Message": null}'),
                                    http("200 OK", TOKEN.encode(), content_type="text/plain")))
    assert (await make_client(url).health_check()).message is None


@pytest.mark.parametrize("body", [b'"not.a.jwt"', b"", b'"eyJhbGciOiJIUzI1NiJ9.e30.sig"'])
async def test_a_log_on_answer_that_is_no_usable_jwt(serve, make_client, body: bytes) -> None:
    url, _ = await serve(with_token(http("200 OK", b"{}"), http("200 OK", body)))
    with pytest.raises(BadResponseError, match="LogOn"):
        await make_client(url).health_check()


async def test_401_twice_is_an_authentication_error(serve, make_client) -> None:
    url, raw = await serve(with_token(http("401 Unauthorized", b"")))
    with pytest.raises(AuthenticationError):
        await make_client(url).health_check()
    assert sum("LogOn" in r for r in raw.requests) == 2
    assert sum("HealthCheck" in r for r in raw.requests) == 2
