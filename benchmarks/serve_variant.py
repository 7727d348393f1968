"""`ivr serve` with candidate fixes patched in, or under cProfile: to measure a fix before making it.

Nothing here changes the package; each patch is applied to this process only. The load harness
runs it with `--variant PATCH[,PATCH...]` (and `--cprofile` below):

  httpcore   the KimVoice client on httpx's default transport (httpcore's pool), as shipped
             until KeepAliveTransport: to measure the "before" on the same day and machine.
  pool=N     the KimVoice client holds at most N connections (the package: 100). With
             `httpcore`, its pool; httpcore scans every pooled connection, with a syscall each,
             on every request.
  gc         gc.freeze() once the service is up, and the collector's first threshold at 50,000.
  nostore    no SQLite on the call path: lockout checks answer "not locked" and call records are
             not saved (diagnostic only: it shows what the embedded store costs per call).
  nometrics  the Prometheus sink is not called (diagnostic only).
  streams    KimVoice over a minimal keep-alive HTTP/1.1 transport on asyncio streams, instead of
             httpcore + anyio (httpx's API, models and the client's code are unchanged).
  lean       `streams`, and the client's `_send` formats the request itself instead of going
             through httpx.AsyncClient (URL parsing, cookies, auth/redirect layers per request).

  python3 benchmarks/serve_variant.py --patch pool=8 --patch gc [--cprofile out.pstats]

Settings come from the same IVR_* variables as `ivr serve`. With --cprofile the profile of the
whole run is written when the service stops (SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import sys
from collections import deque
from pathlib import Path

import httpx

PROJECT = Path(__file__).resolve().parent.parent
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))


class StreamsTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 with keep-alive over asyncio streams: enough for KimVoice's small JSON answers.

    A pool of idle connections (LIFO, no scan); a request takes one or opens one, sends the
    request in one write, reads the status line, headers and a Content-Length body (or chunked),
    and puts the connection back unless the server said `Connection: close`.
    """

    def __init__(self, max_idle: int = 32) -> None:
        self._idle: deque[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = deque()
        self._max_idle = max_idle

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        body = await request.aread()
        target = url.raw_path.decode("ascii")
        headers = "".join(f"{k.decode()}: {v.decode()}\r\n" for k, v in request.headers.raw
                          if k.lower() not in (b"connection", b"transfer-encoding"))
        if body and b"content-length" not in (k.lower() for k, _ in request.headers.raw):
            headers += f"Content-Length: {len(body)}\r\n"
        data = f"{request.method} {target} HTTP/1.1\r\n{headers}\r\n".encode("latin-1") + body
        try:
            status, response_headers, content = await self.exchange(url.host, url.port or 80, data)
        except (OSError, asyncio.IncompleteReadError) as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc
        return httpx.Response(status, headers=response_headers, content=content, request=request)

    async def exchange(self, host: str, port: int, data: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Send one complete request; the status, headers and body of the answer."""
        for attempt in (1, 2):
            reused = bool(self._idle)
            reader, writer = self._idle.pop() if reused else await asyncio.open_connection(host, port)
            try:
                writer.write(data)
                status, headers, content, keep = await self._read_response(reader)
            except (OSError, asyncio.IncompleteReadError):
                writer.close()
                if reused and attempt == 1:
                    continue  # the server closed an idle connection; a fresh one once
                raise
            except BaseException:
                writer.close()
                raise
            if keep and len(self._idle) < self._max_idle:
                self._idle.append((reader, writer))
            else:
                writer.close()
            return status, headers, content
        raise AssertionError("unreachable")

    @staticmethod
    async def _read_response(reader: asyncio.StreamReader) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers = []
        length = None
        chunked = keep = False
        keep = lines[0].startswith(b"HTTP/1.1")
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(b":")
            name, value = name.strip(), value.strip()
            lower = name.lower()
            if lower == b"content-length":
                length = int(value)
            elif lower == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
                continue
            elif lower == b"connection":
                keep = value.lower() != b"close"
            headers.append((name, value))
        if chunked:
            parts = []
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                parts.append((await reader.readexactly(size + 2))[:-2])
            await reader.readuntil(b"\r\n")
            content = b"".join(parts)
        elif length is not None:
            content = await reader.readexactly(length)
        else:
            content, keep = await reader.read(), False
        return status, headers, content, keep

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop()[1].close()


def _patch_lean(client_class: type) -> None:
    """KimVoiceClient._send without httpx's request machinery: the request line and headers are
    formatted directly and sent on a `StreamsTransport` connection; the answer is still an
    `httpx.Response`, so the client's decoding and error handling are unchanged."""
    import json
    from urllib.parse import urlencode

    from ivr.errors import UnavailableError

    async def _send(self, name, attempt, verb, path, **kwargs):  # type: ignore[no-untyped-def]
        lean = self.__dict__.get("_lean")
        if lean is None:
            base = self._http.base_url
            fixed = (f"Host: {base.host}:{base.port}\r\nUser-Agent: keybox-ivr\r\n"
                     "Accept: application/json\r\n")
            lean = self.__dict__["_lean"] = (StreamsTransport(), base.host, base.port or 80, base.path, fixed)
        transport, host, port, base_path, fixed = lean
        target = base_path + path
        if kwargs.get("params"):
            target += "?" + urlencode(kwargs["params"])
        headers = fixed + "".join(f"{k}: {v}\r\n" for k, v in (kwargs.get("headers") or {}).items())
        body = b""
        if "json" in kwargs:
            body = json.dumps(kwargs["json"]).encode()
            headers += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        data = f"{verb} {target} HTTP/1.1\r\n{headers}\r\n".encode("latin-1") + body
        try:
            status, response_headers, content = await transport.exchange(host, port, data)
        except (OSError, asyncio.IncompleteReadError) as exc:
            if attempt >= self._max_attempts:
                raise UnavailableError(f"KimVoice {name}: {type(exc).__name__}") from None
            return None
        return httpx.Response(status, headers=response_headers, content=content)

    client_class._send = _send


def apply(patches: list[str]) -> None:
    import ivr.backends.kimvoice._connect as connect
    from ivr import service
    from ivr.backends.kimvoice._client import KimVoiceClient

    names = {p.partition("=")[0] for p in patches}
    unknown = names - {"httpcore", "pool", "gc", "nostore", "nometrics", "streams", "lean"}
    if unknown:
        raise SystemExit(f"unknown patch: {', '.join(sorted(unknown))}")
    client_kwargs: dict[str, object] = {}
    for patch in patches:
        name, _, value = patch.partition("=")
        if name == "pool":
            client_kwargs["max_connections"] = int(value)
        if name == "streams":
            client_kwargs["transport"] = StreamsTransport()
    if "httpcore" in names:
        size = int(client_kwargs.get("max_connections", 100))  # type: ignore[call-overload]
        client_kwargs["transport"] = httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=size, max_keepalive_connections=size))
    if client_kwargs:
        class PatchedClient(KimVoiceClient):
            def __init__(self, *args: object, **kwargs: object) -> None:
                super().__init__(*args, **(kwargs | client_kwargs))  # type: ignore[arg-type]

        connect.KimVoiceClient = PatchedClient  # type: ignore[misc]
    if "lean" in names:
        _patch_lean(KimVoiceClient)
    if "gc" in names:
        original_start = service.Service.start

        async def start(self: service.Service) -> None:
            await original_start(self)
            gc.collect()
            gc.freeze()
            gc.set_threshold(50_000, 20, 20)

        service.Service.start = start  # type: ignore[method-assign]
    if "nostore" in names:
        from ivr.store import SqliteStore

        async def add_failures(self: SqliteStore, failures: object) -> list[int]:
            return []

        async def nothing(self: SqliteStore, *args: object) -> None:
            return None

        async def save(self: SqliteStore, record: object) -> None:
            return None

        SqliteStore.add_failures = add_failures  # type: ignore[method-assign,assignment]
        SqliteStore.remove_failures = nothing  # type: ignore[method-assign,assignment]
        SqliteStore.save = save  # type: ignore[method-assign,assignment]
    if "nometrics" in names:
        from ivr.web import Metrics

        async def observe(self: Metrics, record: object) -> None:
            return None

        Metrics.observe = observe  # type: ignore[method-assign,assignment]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patch", action="append", default=[], help="a patch (repeatable, or comma-separated)")
    parser.add_argument("--cprofile", metavar="PATH", help="write cProfile stats here when the service stops")
    options = parser.parse_args()
    patches = [p for item in options.patch for p in item.split(",") if p]
    apply(patches)
    from ivr.cli import main as ivr_main

    sys.argv = ["ivr", "serve"]
    if not options.cprofile:
        ivr_main()
        return
    profiler = cProfile.Profile()
    try:
        profiler.runcall(ivr_main)
    except SystemExit:
        pass
    finally:
        profiler.dump_stats(options.cprofile)


if __name__ == "__main__":
    main()
