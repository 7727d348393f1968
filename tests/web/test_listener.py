"""The HTTP listener under slow and numerous clients: real sockets on loopback, raw HTTP bytes.

uvicorn closes only idle keep-alive connections: these show the workaround (`_GuardedH11Protocol`)
closing a connection whose request does not arrive in time, and refusing connections past the bound.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import websockets
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from ivr.embedded_http import EmbeddedHttpServer

REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def hello(_: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


async def slow(_: Request) -> PlainTextResponse:
    await asyncio.sleep(0.6)
    return PlainTextResponse("slow")


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        await websocket.send_text(await websocket.receive_text())


APP = Starlette(routes=[Route("/", hello), Route("/slow", slow), WebSocketRoute("/events", echo)])


class Held:
    """`/held`: answered only once `release` is set, so a test knows its requests are being answered."""

    def __init__(self) -> None:
        self.entered = 0
        self.release = asyncio.Event()

    async def endpoint(self, _: Request) -> PlainTextResponse:
        self.entered += 1
        await self.release.wait()
        return PlainTextResponse("held")


@asynccontextmanager
async def listening(app: Starlette = APP, **limits: object) -> AsyncIterator[Callable[..., Awaitable[Stream]]]:
    """The server with `limits`, and a way to open raw connections to it (closed at the end),
    from a loopback address of the test's choosing (`connect("127.0.0.7")`: another peer)."""
    opened: list[asyncio.StreamWriter] = []
    async with EmbeddedHttpServer(app, **limits) as server:  # type: ignore[arg-type]
        where = urlsplit(server.url)

        async def connect(peer: str = "127.0.0.1") -> Stream:
            reader, writer = await asyncio.open_connection(where.hostname, where.port, local_addr=(peer, 0))
            opened.append(writer)
            return reader, writer

        try:
            yield connect
        finally:
            for writer in opened:
                writer.close()


async def answer(stream: Stream, request: bytes = REQUEST) -> bytes:
    """One request and its whole answer (`Content-Length` framed) on a kept-alive connection."""
    reader, writer = stream
    writer.write(request)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    return head + await reader.readexactly(length)


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> float:
    """How long the server took to close the connection (EOF or reset), failing past `seconds`."""
    started = time.monotonic()
    try:
        assert await asyncio.wait_for(reader.read(), seconds) == b"", "closed without an answer"
    except ConnectionResetError:
        pass
    return time.monotonic() - started


async def test_half_a_request_is_closed_after_the_header_timeout() -> None:
    async with listening(header_timeout=0.3) as connect:
        reader, writer = await connect()
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # no blank line: the head never ends
        assert 0.2 < await closed_within(reader, 3) < 2
        silent, _ = await connect()  # and a connection that sends nothing at all
        assert await closed_within(silent, 3) < 2


async def test_a_trickled_head_is_closed_at_the_deadline_not_kept_alive_by_each_byte() -> None:
    async with listening(header_timeout=0.4) as connect:
        reader, writer = await connect()
        started = time.monotonic()

        async def trickle() -> None:
            for byte in b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
                writer.write(bytes([byte]))
                await asyncio.sleep(0.05)

        task = asyncio.create_task(trickle())
        await closed_within(reader, 3)
        task.cancel()
        assert time.monotonic() - started < 1.5


async def test_a_slow_answer_and_an_idle_keep_alive_are_not_cut_by_the_header_timeout() -> None:
    async with listening(header_timeout=0.3) as connect:
        stream = await connect()
        assert (await answer(stream, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")).endswith(b"slow")
        await asyncio.sleep(0.5)  # idle between requests, longer than the header timeout
        assert (await answer(stream)).endswith(b"hello")


async def test_a_websocket_outlives_the_header_timeout() -> None:
    """The simulated ARI's events socket: once upgraded, the request deadline no longer applies."""
    async with (
        EmbeddedHttpServer(APP, header_timeout=0.2) as server,
        websockets.connect(server.url.replace("http", "ws") + "/events") as socket,
    ):
        await asyncio.sleep(0.5)
        await socket.send("still there?")
        assert await asyncio.wait_for(socket.recv(), 2) == "still there?"


async def test_past_max_connections_the_oldest_idle_connection_makes_room() -> None:
    async with listening(max_connections=8) as connect:
        held = [await connect(f"127.0.0.{2 + n // 2}") for n in range(8)]  # four peers, two each
        for stream in held:  # answered, then idle in keep-alive
            assert (await answer(stream)).endswith(b"hello")
        assert (await answer(await connect("127.0.0.9"))).endswith(b"hello")
        assert await closed_within(held[0][0], 2) < 1  # the oldest idle one gave its place
        for stream in held[1:]:
            assert (await answer(stream)).endswith(b"hello"), "the other connections are still served"


async def test_a_peer_past_its_share_gives_way_to_itself() -> None:
    """A quarter of the bound per peer address: its fifth connection of eight replaces its own oldest."""
    async with listening(max_connections=8) as connect:
        others = [await connect("127.0.0.3") for _ in range(2)]
        mine = [await connect("127.0.0.2") for _ in range(2)]
        for stream in others + mine:
            assert (await answer(stream)).endswith(b"hello")
        assert (await answer(await connect("127.0.0.2"))).endswith(b"hello")
        assert await closed_within(mine[0][0], 2) < 1
        for stream in others:
            assert (await answer(stream)).endswith(b"hello"), "another peer's connections are kept"


async def test_half_sent_requests_cannot_lock_a_probe_out() -> None:
    """Clients fill every slot with half a request head, re-opening as they are closed: a health
    probe from anywhere is still answered."""
    async with listening(max_connections=8, header_timeout=5) as connect:
        for n in range(40):
            _, writer = await connect(f"127.0.0.{2 + n % 4}")
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
        for peer in ("127.0.0.1", "127.0.0.2", "127.0.0.1"):
            assert (await answer(await connect(peer))).endswith(b"hello")


async def test_when_every_connection_is_being_answered_a_new_one_is_closed() -> None:
    held = Held()
    async with listening(Starlette(routes=[Route("/held", held.endpoint)]), max_connections=4) as connect:
        busy = [await connect(f"127.0.0.{2 + n}") for n in range(4)]
        answers = [asyncio.create_task(answer(stream, b"GET /held HTTP/1.1\r\nHost: x\r\n\r\n")) for stream in busy]
        async with asyncio.timeout(5):
            while held.entered < 4:
                await asyncio.sleep(0.005)
        reader, writer = await connect()
        writer.write(REQUEST)
        assert await closed_within(reader, 2) < 1
        held.release.set()
        assert [(await task).endswith(b"held") for task in answers] == [True] * 4


async def test_a_peer_outside_the_allow_list_is_closed_before_anything_is_read() -> None:
    from ivr.netallow import parse_networks

    async with listening(allow=parse_networks("10.0.0.0/8")) as connect:  # type: ignore[arg-type]
        reader, writer = await connect()
        writer.write(REQUEST)
        assert await closed_within(reader, 2) < 1
