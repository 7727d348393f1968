"""An httpx transport for KimVoice: HTTP/1.1 keep-alive on asyncio streams, with an O(1) pool.

Why it exists: httpcore's connection pool, httpx's default transport, inspects every pooled
connection on every request and on every response close. For each one it makes a `poll()`
syscall (`has_expired` → `is_socket_readable`) and goes through anyio's attribute lookups, and
its idle scan is quadratic (encode/httpcore#1035, open upstream). Measured on 2026-11-23
(benchmarks/README.md): 57% of the service's event loop went to httpx/httpcore/anyio, complete
calls topped out at 72.6/s at 64 concurrent, and 97% of 2,000 paced callers failed. This
transport keeps httpx's API (the project's rule: httpx for every HTTP client) and replaces only
what sits under `AsyncBaseTransport`:

* idle connections are a LIFO stack per origin: a request takes the top one, and a stale-looking
  one is recognised from asyncio's own state (`at_eof()`, `is_closing()`), without a syscall;
* bodies are read fully (KimVoice answers are small JSON), up to `max_body_size`: a longer
  answer, declared or as it arrives, is `AnswerTooLarge` and its connection is closed;
* the request head is written here, its names and values checked; answers are parsed by
  httptools (llhttp, in C): with h11 the parsing alone was about a tenth of the service's CPU
  in the soak (benchmarks/README.md, Soak), 44 µs an answer against 2 µs;
* a pooled connection that fails before any byte of the answer is retried once on a fresh
  connection (the server closed it while it was idle: the request did not reach it);
* failures and timeouts map onto httpx's exceptions, so callers see what httpcore would raise.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections import deque

import httptools
import httpx

from ivr.http_answers import AnswerTooLarge

__all__ = ["KeepAliveTransport"]

_Origin = tuple[str, str, int]  # scheme, host, port
_DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_HEAD_BYTES = 16_384
"""An answer's status line and headers at most (h11's bound): llhttp itself has none, and a
peer sending headers without end would otherwise be held in memory until the deadline."""


class _Stale(Exception):
    """A reused connection failed before any byte of the answer arrived."""


class _Connection:
    __slots__ = ("closed", "idle_since", "origin", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, origin: _Origin) -> None:
        self.reader = reader
        self.writer = writer
        self.origin = origin
        self.idle_since = 0.0
        self.closed = False

    def usable(self, now: float, expiry: float | None) -> bool:
        """Whether an idle connection may carry a request: asyncio's state only, no syscall.

        Bytes that arrived while it was idle (a server's 408 before it closes, say) would be
        read as the next request's answer, so they make it unusable too. asyncio has no public
        accessor for the buffered length; `_buffer` has been StreamReader's for a decade.
        """
        reader = self.reader
        return not (
            reader.at_eof()
            or getattr(reader, "_buffer", None)
            or self.writer.transport.is_closing()
            or reader.exception() is not None
            or (expiry is not None and now - self.idle_since > expiry)
        )


class KeepAliveTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 (and http/https) for small request/response exchanges, pooled per origin.

    `max_connections` bounds the requests in flight, and with them the connections open; a
    request waits for a slot up to the pool timeout. `max_idle` bounds the idle connections
    kept per origin; `keepalive_expiry` closes connections idle longer than that (httpx's
    default, 5 s). `ssl_context` is used for https; by default `ssl.create_default_context()`.
    The read timeout bounds the whole answer, not each read: KimVoice's answers are small.
    `max_body_size` bounds an answer's body (bytes as sent, before any content decoding).
    """

    def __init__(
        self,
        *,
        max_connections: int = 100,
        max_idle: int | None = None,
        keepalive_expiry: float | None = 5.0,
        ssl_context: ssl.SSLContext | None = None,
        read_size: int = 65_536,
        max_body_size: int = 1 << 20,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self._max_connections = max_connections
        self._max_idle = max_connections if max_idle is None else max_idle
        self._expiry = keepalive_expiry
        self._ssl_context = ssl_context
        self._read_size = read_size
        self._max_body = max_body_size
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: dict[_Origin, deque[_Connection]] = {}
        self._open = 0
        self._closed = False

    @property
    def open_connections(self) -> int:
        """Connections open now, idle and in use."""
        return self._open

    @property
    def idle_connections(self) -> int:
        return sum(len(stack) for stack in self._idle.values())

    # -- httpx's interface ----------------------------------------------------------------

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise RuntimeError("the transport is closed")
        url = request.url
        scheme = url.scheme
        if scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}", request=request)
        if not url.host:
            raise httpx.UnsupportedProtocol("the URL has no host", request=request)
        origin = (scheme, url.host, url.port or _DEFAULT_PORTS[scheme])
        timeouts: dict[str, float | None] = request.extensions.get("timeout") or {}
        body = await request.aread()
        head = _request_head(request, url.raw_path, body)

        if self._slots.locked():
            try:
                async with asyncio.timeout(timeouts.get("pool")):
                    await self._slots.acquire()
            except TimeoutError:
                raise httpx.PoolTimeout("no connection slot free within the pool timeout", request=request) from None
        else:
            await self._slots.acquire()  # free: returns at once
        try:
            return await self._exchange(origin, request, head, body, timeouts)
        finally:
            self._slots.release()

    async def aclose(self) -> None:
        self._closed = True
        for stack in self._idle.values():
            while stack:
                self._discard(stack.pop())
        self._idle.clear()

    # -- the exchange ---------------------------------------------------------------------

    async def _exchange(
        self, origin: _Origin, request: httpx.Request, head: bytes, body: bytes,
        timeouts: dict[str, float | None],
    ) -> httpx.Response:
        conn = self._take_idle(origin)
        while True:
            reused = conn is not None
            if conn is None:
                conn = await self._connect(origin, request, timeouts.get("connect"))
            try:
                response, reusable = await self._round_trip(conn, request, head, body, timeouts, reused)
            except _Stale:
                self._discard(conn)
                conn = None  # once, on a fresh connection: a fresh one never raises _Stale
                continue
            except BaseException:  # errors, timeouts, cancellation: never pool a half-used connection
                self._discard(conn)
                raise
            if reusable:
                self._put_idle(conn)
            else:
                self._discard(conn)
            return response

    async def _round_trip(
        self, conn: _Connection, request: httpx.Request, head: bytes, body: bytes,
        timeouts: dict[str, float | None], reused: bool,
    ) -> tuple[httpx.Response, bool]:
        writer = conn.writer
        try:
            writer.write(head + body)
            if writer.transport.get_write_buffer_size():
                async with asyncio.timeout(timeouts.get("write")):
                    await writer.drain()
        except TimeoutError:
            raise httpx.WriteTimeout("timed out sending the request", request=request) from None
        except OSError as exc:
            if reused:
                raise _Stale from exc
            raise httpx.WriteError(_describe(exc), request=request) from exc

        reader = conn.reader
        answer = _Answer()
        parser = answer.parser = httptools.HttpResponseParser(answer)
        received = False
        head_bytes = 0
        try:
            async with asyncio.timeout(timeouts.get("read")):
                while not answer.complete:
                    try:
                        chunk = await reader.read(self._read_size)
                    except OSError as exc:
                        if reused and not received:
                            raise _Stale from exc
                        raise httpx.ReadError(_describe(exc), request=request) from exc
                    if not chunk:
                        if not received:
                            if reused:
                                raise _Stale
                            raise httpx.RemoteProtocolError(
                                "the server closed the connection without sending a response", request=request)
                        if answer.until_close:
                            break  # the body of an answer with neither length nor chunks ends at the close
                        raise httpx.RemoteProtocolError(
                            "the server closed the connection before the response ended", request=request)
                    received = True
                    if not answer.head_done:
                        head_bytes += len(chunk)
                    try:
                        parser.feed_data(chunk)
                    except httptools.HttpParserError as exc:
                        if not answer.complete:
                            raise httpx.RemoteProtocolError(
                                f"malformed HTTP response ({exc})", request=request) from None
                        answer.trailing = True  # bytes after the answer: the connection is not reused
                    if not answer.head_done and head_bytes > MAX_HEAD_BYTES:
                        raise httpx.RemoteProtocolError(
                            f"the answer's status line and headers are longer than {MAX_HEAD_BYTES} bytes",
                            request=request)
                    if answer.size > self._max_body or answer.declared > self._max_body:
                        raise AnswerTooLarge(f"the answer is longer than {self._max_body} bytes")
        except TimeoutError:
            raise httpx.ReadTimeout("timed out reading the response", request=request) from None
        finally:
            answer.parser = None

        reusable = answer.complete and answer.keep_alive and not answer.trailing
        response = httpx.Response(
            answer.status,
            headers=answer.headers,
            stream=httpx.ByteStream(b"".join(answer.parts)),
            extensions={"http_version": b"HTTP/" + answer.version.encode("ascii"), "reason_phrase": answer.reason},
            request=request,
        )
        return response, reusable

    # -- the pool -------------------------------------------------------------------------

    def _take_idle(self, origin: _Origin) -> _Connection | None:
        stack = self._idle.get(origin)
        if not stack:
            return None
        now = time.monotonic()
        while stack:
            conn = stack.pop()
            if conn.usable(now, self._expiry):
                return conn
            self._discard(conn)  # closed by the server, or idle too long
        return None

    def _put_idle(self, conn: _Connection) -> None:
        if self._closed:
            self._discard(conn)
            return
        now = time.monotonic()
        conn.idle_since = now
        stack = self._idle.get(conn.origin)
        if stack is None:
            stack = self._idle[conn.origin] = deque()
        stack.append(conn)
        # Trim the cold end: the oldest connection, over the bound or no longer usable.
        while stack and (len(stack) > self._max_idle or not stack[0].usable(now, self._expiry)):
            self._discard(stack.popleft())

    async def _connect(self, origin: _Origin, request: httpx.Request, timeout: float | None) -> _Connection:
        scheme, host, port = origin
        self._make_room()
        context = None
        if scheme == "https":
            if self._ssl_context is None:
                self._ssl_context = ssl.create_default_context()
            context = self._ssl_context
        self._open += 1
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=context, server_hostname=host if context else None)
        except TimeoutError:
            self._open -= 1
            raise httpx.ConnectTimeout(f"timed out connecting to {host}:{port}", request=request) from None
        except OSError as exc:  # refused, unreachable, DNS, TLS handshake
            self._open -= 1
            raise httpx.ConnectError(_describe(exc), request=request) from exc
        except BaseException:
            self._open -= 1
            raise
        return _Connection(reader, writer, origin)

    def _make_room(self) -> None:
        """At the bound, close the oldest idle connection of another origin for a new one."""
        if self._open < self._max_connections:
            return
        for stack in self._idle.values():
            if stack:
                self._discard(stack.popleft())
                return

    def _discard(self, conn: _Connection) -> None:
        if not conn.closed:
            conn.closed = True
            self._open -= 1
            conn.writer.close()


class _Answer:
    """What httptools' parser reports of one answer, kept as it arrives (its callback protocol).

    An informational answer (1xx) is dropped: the final one follows on the same connection.
    `parser` is set by the exchange and cleared at its end, so that the two never form a cycle
    left to the garbage collector.
    """

    __slots__ = ("complete", "declared", "head_done", "headers", "keep_alive", "parser", "parts", "reason", "size",
                 "status", "trailing", "until_close", "version")

    def __init__(self) -> None:
        self.parser: httptools.HttpResponseParser | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.parts: list[bytes] = []
        self.reason = b""
        self.size = 0
        self.declared = 0
        self.status = 0
        self.version = "1.1"
        self.keep_alive = False
        self.head_done = False
        self.complete = False
        self.trailing = False
        self.until_close = False

    def on_message_begin(self) -> None:
        if self.complete:
            self.trailing = True  # a second answer to one request

    def on_status(self, reason: bytes) -> None:
        if not self.complete:
            self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.complete:
            return
        self.headers.append((name, value))
        if name.lower() == b"content-length":
            self.declared = int(value)  # llhttp has checked that it is a number

    def on_headers_complete(self) -> None:
        if self.complete:
            return
        assert self.parser is not None
        # llhttp forgets both once the message is complete
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()
        self.version = self.parser.get_http_version()
        # Neither a length nor chunks: the body ends when the server closes (llhttp then never
        # completes the message; the exchange ends it at the close).
        names = {name.lower() for name, _ in self.headers}
        self.until_close = b"content-length" not in names and b"transfer-encoding" not in names
        self.head_done = self.status >= 200

    def on_body(self, data: bytes) -> None:
        if not self.complete:
            self.size += len(data)
            self.parts.append(data)

    def on_message_complete(self) -> None:
        if self.complete:
            return
        if self.status < 200:
            self.headers.clear()
            self.parts.clear()
            self.reason = b""
            self.size = self.declared = 0
            return
        self.complete = True
        self.until_close = False


_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(rb"[^\x00\r\n]*")
_TARGET = re.compile(rb"[\x21-\x7e]+")
_FRAMING = (b"content-length", b"transfer-encoding", b"connection")


def _request_head(request: httpx.Request, target: bytes, body: bytes) -> bytes:
    """The request line and headers, checked: a name that is not a token, or a CR, LF or NUL
    in a value (a header injected through a backend's token, say) is refused, not sent.
    The body was read whole, so it goes with a Content-Length."""
    method = request.method.encode("ascii")
    if not _TOKEN.fullmatch(method) or not _TARGET.fullmatch(target):
        raise httpx.LocalProtocolError("illegal request line", request=request)
    lines = [method, b" ", target, b" HTTP/1.1\r\n"]
    for name, value in request.headers.raw:
        if not _TOKEN.fullmatch(name) or not _FIELD_VALUE.fullmatch(value):
            raise httpx.LocalProtocolError(f"illegal header {name!r}", request=request)
        if name.lower() not in _FRAMING:
            lines += (name, b": ", value, b"\r\n")
    if body or method in (b"POST", b"PUT", b"PATCH"):
        lines.append(b"Content-Length: %d\r\n" % len(body))
    lines.append(b"\r\n")
    return b"".join(lines)


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
