"""KeepAliveTransport, the KimVoice client's workaround for httpcore's pool (encode/httpcore#1035).

Real sockets on loopback against a raw asyncio HTTP server that counts connections; no mocks.
The first two tests show the defect and the workaround side by side: with idle connections
pooled, httpcore makes a poll() syscall per pooled connection per request; this transport none.
"""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import select
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from ivr.backends.kimvoice import KimVoiceClient
from ivr.backends.kimvoice._transport import KeepAliveTransport
from ivr.http_answers import AnswerTooLarge


def ok(body: bytes = b'{"ok": true}', *extra: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in extra)
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{head}\r\n"
    return head.encode() + body


@dataclass
class Seen:
    conn: int  # which accepted connection, from 0
    n: int  # which request on that connection, from 1
    head: bytes
    body: bytes


Respond = Callable[[Seen], Awaitable[bytes | None]]


class RawServer:
    """HTTP/1.1 on a real socket: answers each request with the bytes `respond` returns (None:
    close without answering), keeps the connection unless the answer says otherwise, and
    counts accepted connections and requests in flight."""

    def __init__(self, respond: Respond) -> None:
        self.respond = respond
        self.accepted = 0
        self.requests: list[Seen] = []
        self.active = self.peak = 0
        self.writers: set[asyncio.StreamWriter] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.url = ""

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        self.writers.add(writer)
        conn, self.accepted = self.accepted, self.accepted + 1
        n = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                n += 1
                seen = Seen(conn, n, head, await reader.readexactly(length))
                self.requests.append(seen)
                self.active += 1
                self.peak = max(self.peak, self.active)
                try:
                    answer = await self.respond(seen)
                finally:
                    self.active -= 1
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                answer_head = answer.split(b"\r\n\r\n")[0].lower()
                if b"connection: close" in answer_head or answer.startswith(b"HTTP/1.0"):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:  # the fixture's teardown: end quietly
            pass
        finally:
            self.writers.discard(writer)
            writer.close()

    def drop_idle(self) -> None:
        """Close every connection (the server's keep-alive timeout, or a restart)."""
        for writer in list(self.writers):
            writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[RawServer]]]:
    started: list[tuple[asyncio.Server, RawServer]] = []

    async def start(respond: Respond | None = None, ssl_context: ssl.SSLContext | None = None) -> RawServer:
        async def default(seen: Seen) -> bytes:
            return ok(f'{{"conn": {seen.conn}}}'.encode())

        raw = RawServer(respond or default)
        server = await asyncio.start_server(raw._handle, "127.0.0.1", 0, ssl=ssl_context)
        scheme = "https" if ssl_context else "http"
        raw.url = f"{scheme}://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        started.append((server, raw))
        return raw

    yield start
    for server, raw in started:
        server.close()
        for task in raw.tasks:
            task.cancel()
        await asyncio.gather(*raw.tasks, return_exceptions=True)
        await server.wait_closed()


@pytest.fixture
async def make() -> AsyncIterator[Callable[..., httpx.AsyncClient]]:
    clients: list[httpx.AsyncClient] = []

    def make_client(transport: httpx.AsyncBaseTransport | None = None, **timeouts: float) -> httpx.AsyncClient:
        transport = transport or KeepAliveTransport(max_connections=10)
        clients.append(httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(2.0, **timeouts)))
        return clients[-1]

    yield make_client
    for client in clients:
        await client.aclose()


async def fill_pool(client: httpx.AsyncClient, server: RawServer, n: int) -> None:
    """Leave `n` idle connections in the client's pool: n requests held until all n arrived."""
    arrived = asyncio.Event()

    async def hold(seen: Seen) -> bytes:
        if server.active == n:
            arrived.set()
        await arrived.wait()
        return ok()

    server.respond = hold
    responses = await asyncio.gather(*(client.get(server.url) for _ in range(n)))
    assert [r.status_code for r in responses] == [200] * n and server.accepted == n

    async def plain(seen: Seen) -> bytes:
        return ok(f'{{"conn": {seen.conn}}}'.encode())

    server.respond = plain


def idle(transport: KeepAliveTransport) -> list[Any]:
    """The transport's idle connections (white box: which path a request takes depends on them)."""
    return [conn for stack in transport._idle.values() for conn in stack]


async def until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    """Let the event loop run until `condition()` holds: readiness, not a guessed delay."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.001)


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Records each round trip the transport makes: True when on a reused connection."""
    made: list[bool] = []
    real = KeepAliveTransport._round_trip

    async def recording(self: KeepAliveTransport, conn: Any, request: httpx.Request, *args: Any) -> Any:
        made.append(args[-1])  # `reused`
        return await real(self, conn, request, *args)

    monkeypatch.setattr(KeepAliveTransport, "_round_trip", recording)
    return made


@pytest.fixture
def polls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts `select.poll()` objects made: httpcore makes one per pooled connection it checks."""
    made: list[int] = []
    real = select.poll

    def counting() -> select.poll:  # type: ignore[valid-type]
        made.append(1)
        return real()

    monkeypatch.setattr(select, "poll", counting)
    return made


# -- the defect and the workaround -----------------------------------------------------------


async def test_httpcore_polls_every_pooled_connection_on_every_request(serve, make, polls) -> None:
    """The upstream defect (encode/httpcore#1035). If this starts failing, httpcore has fixed its
    pool, and KeepAliveTransport may be worth retiring: re-run benchmarks/load.py to decide."""
    server = await serve()
    client = make(httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=50, max_keepalive_connections=50)))
    await fill_pool(client, server, 16)
    polls.clear()
    await client.get(server.url)
    assert len(polls) >= 16  # one syscall per idle connection, at least once per request


async def test_a_request_inspects_no_idle_connection_but_the_one_it_takes(serve, make, polls) -> None:
    server = await serve()
    transport = KeepAliveTransport(max_connections=50)
    client = make(transport)
    await fill_pool(client, server, 16)
    assert transport.idle_connections == 16
    polls.clear()
    conns = {(await client.get(server.url)).json()["conn"] for _ in range(20)}
    assert polls == []
    # LIFO: the connection put back last is taken next, every time; nothing new is opened.
    assert len(conns) == 1 and server.accepted == 16
    assert transport.idle_connections == 16 and transport.open_connections == 16


# -- keep-alive and the pool ---------------------------------------------------------------


async def test_sequential_requests_share_one_connection(serve, make) -> None:
    server = await serve()
    transport = KeepAliveTransport()
    client = make(transport)
    for _ in range(50):
        assert (await client.get(server.url + "/api/V1/HealthCheck?x=1")).json() == {"conn": 0}
    assert server.accepted == 1 and len(server.requests) == 50
    assert server.requests[0].head.startswith(b"GET /api/V1/HealthCheck?x=1 HTTP/1.1\r\n")
    assert transport.open_connections == transport.idle_connections == 1


async def test_concurrency_is_bounded_by_max_connections(serve, make) -> None:
    async def slow(seen: Seen) -> bytes:
        await asyncio.sleep(0.01)
        return ok()

    server = await serve(slow)
    transport = KeepAliveTransport(max_connections=3)
    client = make(transport)
    responses = await asyncio.gather(*(client.get(server.url) for _ in range(30)))
    assert all(r.status_code == 200 for r in responses)
    assert server.peak == 3 and server.accepted == 3 and transport.open_connections == 3


async def test_a_request_waits_for_a_slot_until_the_pool_timeout(serve, make) -> None:
    arrived, release = asyncio.Event(), asyncio.Event()

    async def held(seen: Seen) -> bytes:
        arrived.set()
        await release.wait()
        return ok()

    server = await serve(held)
    client = make(KeepAliveTransport(max_connections=1), pool=0.05)
    first = asyncio.create_task(client.get(server.url))
    await asyncio.wait_for(arrived.wait(), 2)  # the first request holds the only slot
    with pytest.raises(httpx.PoolTimeout):
        await client.get(server.url)
    release.set()
    assert (await first).status_code == 200
    assert (await client.get(server.url)).status_code == 200 and server.accepted == 1


async def test_an_idle_connection_the_server_closed_is_replaced(serve, make, round_trips) -> None:
    """Once the client's loop has seen the server's FIN, the pool drops the connection before
    sending anything on it: the request goes out once, on a fresh connection. (Had the FIN not
    arrived yet, the stale-connection retry would give the same answer: the test below.)"""
    server = await serve()
    transport = KeepAliveTransport()
    client = make(transport)
    assert (await client.get(server.url)).json() == {"conn": 0}
    [pooled] = idle(transport)
    server.drop_idle()
    await until(pooled.reader.at_eof)  # no syscall of ours looks: asyncio's own reading sees it
    round_trips.clear()
    assert (await client.get(server.url)).json() == {"conn": 1}
    assert round_trips == [False], "one round trip, on a fresh connection: not the stale retry"
    assert server.accepted == 2 and transport.open_connections == 1


@pytest.mark.parametrize("then_close", [True, False])
async def test_bytes_sent_on_an_idle_connection_make_it_unusable(serve, make, then_close) -> None:
    """A server may answer an idle connection with a 408 (and close it): that is no answer to
    the next request, so the connection is dropped, not read from."""
    server = await serve()
    transport = KeepAliveTransport()
    client = make(transport)
    assert (await client.get(server.url)).json() == {"conn": 0}
    (writer,) = server.writers
    writer.write(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    if then_close:
        writer.close()
    [pooled] = idle(transport)
    await until(lambda: bool(getattr(pooled.reader, "_buffer", b"")) or pooled.reader.at_eof())
    response = await client.get(server.url)
    assert (response.status_code, response.json()) == (200, {"conn": 1})
    assert transport.open_connections == 1


async def test_a_stale_connection_failing_before_any_answer_is_retried_once_on_a_fresh_one(
    serve, make, round_trips,
) -> None:
    async def keep_alive_race(seen: Seen) -> bytes | None:
        return ok() if seen.n == 1 else None  # closes as the second request on a connection arrives

    server = await serve(keep_alive_race)
    transport = KeepAliveTransport()
    client = make(transport)
    assert (await client.get(server.url)).status_code == 200
    round_trips.clear()
    assert (await client.get(server.url)).status_code == 200
    assert round_trips == [True, False], "the reused connection failed, the retry went on a fresh one"
    assert [(s.conn, s.n) for s in server.requests] == [(0, 1), (0, 2), (1, 1)]
    assert transport.open_connections == 1


async def test_a_fresh_connection_closed_without_an_answer_is_not_retried(serve, make) -> None:
    async def close(seen: Seen) -> None:
        return None

    server = await serve(close)
    transport = KeepAliveTransport()
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        await make(transport).get(server.url)
    assert len(server.requests) == 1 and transport.open_connections == 0


async def test_connection_close_is_respected(serve, make) -> None:
    async def closing(seen: Seen) -> bytes:
        return ok(b"{}", "Connection: close")

    server = await serve(closing)
    transport = KeepAliveTransport()
    client = make(transport)
    for _ in range(3):
        assert (await client.get(server.url)).json() == {}
        assert transport.open_connections == 0
    assert server.accepted == 3


async def test_http_1_0_without_length_is_read_to_the_close_and_not_pooled(serve, make) -> None:
    async def old(seen: Seen) -> bytes:
        return b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello"

    server = await serve(old)
    transport = KeepAliveTransport()
    response = await make(transport).get(server.url)
    assert (response.status_code, response.text, response.http_version) == (200, "hello", "HTTP/1.0")
    assert transport.open_connections == 0


async def test_chunked_and_gzip_bodies_are_decoded(serve, make) -> None:
    packed = gzip.compress(b'{"operationalMode": "Normal"}')

    async def chunked(seen: Seen) -> bytes:
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (packed[:10], packed[10:]))
        return (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
                + chunks + b"0\r\n\r\n")

    server = await serve(chunked)
    client = make()
    for _ in range(2):
        assert (await client.get(server.url)).json() == {"operationalMode": "Normal"}
    assert server.accepted == 1


async def test_a_post_body_reaches_the_server_with_its_headers(serve, make) -> None:
    async def echo(seen: Seen) -> bytes:
        return ok(seen.body)

    server = await serve(echo)
    response = await make().post(server.url + "/api/V1/Token/LogOn", json={"clientId": "a"},
                                 headers={"X-Trace": "1"})
    assert response.json() == {"clientId": "a"}
    head = server.requests[0].head.lower()
    assert b"content-length: 16\r\n" in head and b"x-trace: 1\r\n" in head and b"host: 127.0.0.1:" in head


# -- failures ------------------------------------------------------------------------------


async def test_a_truncated_body_is_a_remote_protocol_error(serve, make) -> None:
    async def truncated(seen: Seen) -> None:
        writer = next(iter(server.writers))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n" + b'{"operationalMode": "Nor')
        await writer.drain()  # and returns None: the server closes the connection

    server = await serve(truncated)
    transport = KeepAliveTransport()
    with pytest.raises(httpx.RemoteProtocolError):
        await make(transport).get(server.url)
    assert len(server.requests) == 1 and transport.open_connections == 0


async def test_malformed_http_is_a_remote_protocol_error(serve, make) -> None:
    async def garbage(seen: Seen) -> bytes:
        return b"<html>not http</html>\r\n\r\n"

    server = await serve(garbage)
    transport = KeepAliveTransport()
    with pytest.raises(httpx.RemoteProtocolError):
        await make(transport).get(server.url)
    assert transport.open_connections == 0


@pytest.mark.parametrize("head", [
    pytest.param(b"X-Padding: " + b"a" * 200_000, id="one-endless-header"),
    pytest.param(b"".join(b"X-%d: a\r\n" % i for i in range(20_000)), id="headers-without-end"),
])
async def test_a_head_past_its_bound_is_a_remote_protocol_error(serve, make, head: bytes) -> None:
    """llhttp bounds no header: the transport does (16 KiB, as h11 did), not the deadline."""
    async def endless(seen: Seen) -> bytes:
        return b"HTTP/1.1 200 OK\r\n" + head

    server = await serve(endless)
    transport = KeepAliveTransport()
    with pytest.raises(httpx.RemoteProtocolError, match="16384 bytes"):
        await make(transport).get(server.url)
    assert transport.open_connections == 0


async def test_a_head_just_under_its_bound_is_read(serve, make) -> None:
    async def padded(seen: Seen) -> bytes:
        return ok(b"{}", "X-Padding: " + "a" * 16_000)

    server = await serve(padded)
    response = await make(KeepAliveTransport()).get(server.url)
    assert response.status_code == 200 and len(response.headers["x-padding"]) == 16_000


async def test_a_line_break_in_a_header_value_is_refused_and_nothing_is_sent(serve, make) -> None:
    """httpx lets a CR or LF through in a header value; a token from a backend could carry one."""
    server = await serve()
    transport = KeepAliveTransport()
    with pytest.raises(httpx.LocalProtocolError, match="Authorization"):
        await make(transport).get(server.url, headers={"Authorization": "Bearer x\r\nX-Injected: 1"})
    assert server.requests == [] and server.accepted == 0


async def test_an_informational_answer_is_skipped_for_the_final_one(serve, make) -> None:
    async def continue_then_ok(seen: Seen) -> bytes:
        return b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b'{"final": true}')

    server = await serve(continue_then_ok)
    transport = KeepAliveTransport()
    client = make(transport)
    for _ in range(2):
        response = await client.get(server.url)
        assert (response.status_code, response.json()) == (200, {"final": True})
    assert server.accepted == 1


async def test_a_second_answer_to_one_request_drops_the_connection(serve, make) -> None:
    """Bytes after the answer would be read as the next request's answer: never pooled."""
    async def twice(seen: Seen) -> bytes:
        return ok(b'{"n": 1}') + ok(b'{"n": 2}')

    server = await serve(twice)
    transport = KeepAliveTransport()
    client = make(transport)
    assert [(await client.get(server.url)).json() for _ in range(2)] == [{"n": 1}, {"n": 1}]
    assert server.accepted == 2 and transport.open_connections == 0


@pytest.mark.parametrize("framing", ["Content-Length: 5000", "Transfer-Encoding: chunked"])
async def test_an_answer_over_the_body_bound_is_refused_and_its_connection_dropped(serve, make, framing) -> None:
    async def big(seen: Seen) -> bytes:
        if seen.n > 1 or seen.conn > 0:
            return ok()
        body = b"x" * 5000
        if framing.startswith("Transfer"):
            body = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:2500], body[2500:])) + b"0\r\n\r\n"
        return f"HTTP/1.1 200 OK\r\n{framing}\r\n\r\n".encode() + body

    server = await serve(big)
    transport = KeepAliveTransport(max_body_size=4096)
    client = make(transport)
    with pytest.raises(AnswerTooLarge):
        await client.get(server.url)
    assert transport.open_connections == 0
    assert (await client.get(server.url)).json() == {"ok": True} and server.accepted == 2


async def test_a_refused_connection_is_a_connect_error(make) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: refused
        transport = KeepAliveTransport()
        with pytest.raises(httpx.ConnectError):
            await make(transport).get(f"http://127.0.0.1:{port}/")
    assert transport.open_connections == 0


async def test_a_read_timeout_closes_the_connection(serve, make) -> None:
    async def first_hangs(seen: Seen) -> bytes:
        if seen.conn == 0:
            await asyncio.sleep(10)
        return ok()

    server = await serve(first_hangs)
    transport = KeepAliveTransport()
    client = make(transport, read=0.05)
    with pytest.raises(httpx.ReadTimeout):
        await client.get(server.url)
    assert transport.open_connections == 0
    assert (await client.get(server.url)).status_code == 200 and server.accepted == 2


async def test_cancellation_mid_request_leaves_the_pool_clean(serve, make) -> None:
    async def first_hangs(seen: Seen) -> bytes:
        if seen.conn == 0 and seen.n == 2:
            await asyncio.sleep(10)
        return ok(f'{{"conn": {seen.conn}}}'.encode())

    server = await serve(first_hangs)
    transport = KeepAliveTransport()
    client = make(transport)
    assert (await client.get(server.url)).json() == {"conn": 0}
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):  # as the KimVoice client bounds each method
            await client.get(server.url)
    assert transport.open_connections == transport.idle_connections == 0
    # The half-used connection is gone: the next request opens a fresh one and gets its own answer.
    assert (await client.get(server.url)).json() == {"conn": 1}


# -- https and the KimVoice client ---------------------------------------------------------


async def test_https_with_the_given_context(serve, make, tmp_path) -> None:
    pytest.importorskip("cryptography")
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_pem, key_pem = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_pem, key_pem)
    server = await serve(ssl_context=server_context)

    with pytest.raises(httpx.ConnectError):  # the default context does not trust a self-signed cert
        await make(KeepAliveTransport()).get(server.url)
    client = make(KeepAliveTransport(ssl_context=ssl.create_default_context(cafile=str(cert_pem))))
    for _ in range(3):
        assert (await client.get(server.url)).status_code == 200
    assert server.accepted == 1  # the failed handshake never reached the handler; then one connection


async def test_the_kimvoice_client_uses_it_by_default(sandbox) -> None:
    async with KimVoiceClient(sandbox.url, "id", "secret") as kimvoice:
        assert isinstance(kimvoice._transport, KeepAliveTransport)


def test_an_egress_proxy_keeps_httpx_own_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    """KeepAliveTransport knows no proxies; with HTTPS_PROXY set, httpx's transport honours it."""
    from ivr.backends.kimvoice import KimVoiceClient
    from ivr.backends.kimvoice._transport import KeepAliveTransport

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    proxied = KimVoiceClient("https://kimvoice.example.com", "id", "secret")
    direct = KimVoiceClient("http://127.0.0.1:9", "id", "secret")
    assert not isinstance(proxied._transport, KeepAliveTransport)
    assert isinstance(direct._transport, KeepAliveTransport)
