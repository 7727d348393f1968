"""An HTTP answer read whole within a bound and a deadline: how every HTTP client of ours
(KimVoice, ICTCore, Kazoo) takes a peer's body, so that no peer can make the service hold more
than it meant to, or wait longer; and how a body that does not fit its model is told."""

from __future__ import annotations

import asyncio
import time

import httpx
import structlog
from pydantic import ValidationError

__all__ = ["MAX_ANSWER_BYTES", "PEER_HEADERS", "AnswerTooLarge", "NoAnswer", "exchange", "misfit", "peer_client",
           "read_bounded"]

MAX_ANSWER_BYTES = 1 << 20
"""No answer of our peers comes near a megabyte; one that does is not theirs to send."""


PEER_HEADERS = {"User-Agent": "keybox-ivr", "Accept": "application/json", "Accept-Encoding": "identity"}
"""Sent with every request of `peer_client`: identity, since `read_bounded` refuses a compressed
answer (it could unpack to far more than its bound)."""


def peer_client(
    timeout: float, *, base_url: str = "", transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """The pooled httpx client of one peer (ICTCore, Kazoo, Kimoby, Codelocks): a few connections,
    `PEER_HEADERS`, and `transport` for the tests that swap it."""
    return httpx.AsyncClient(
        base_url=base_url, timeout=httpx.Timeout(timeout), headers=PEER_HEADERS, transport=transport,
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
    )


class AnswerTooLarge(httpx.HTTPError):
    """An answer longer than its reader accepts, or compressed: refused before it is read into memory."""


async def read_bounded(response: httpx.Response, limit: int = MAX_ANSWER_BYTES) -> httpx.Response:
    """`response` (streamed) with its body read, or `AnswerTooLarge` past `limit` bytes or when
    encoded: we never ask for compression, and a megabyte of gzip can unpack to a gigabyte."""
    for name, value in response.headers.raw:  # bytes: Headers.get decodes them all per lookup
        name = name.lower()
        if name == b"content-encoding" and value.strip().lower() not in (b"", b"identity"):
            encoding = value.strip().decode("latin-1")
            raise AnswerTooLarge(f"the answer is {encoding}-encoded, which was not asked for")
        if name == b"content-length" and value.strip().isdigit() and int(value) > limit:
            raise AnswerTooLarge(f"the answer declares more than {limit} bytes")
    body = bytearray()
    async for chunk in response.aiter_raw():
        body += chunk
        if len(body) > limit:
            raise AnswerTooLarge(f"the answer is longer than {limit} bytes")
    return httpx.Response(response.status_code, headers=response.headers, content=bytes(body),
                          request=response.request, extensions=response.extensions)


def misfit(exc: ValidationError) -> str:
    """Where a peer's body first fails its model and why, as `where: what`, never the value there
    (a body may hold a code)."""
    first = exc.errors(include_url=False, include_input=False)[0]
    return f"{'.'.join(str(part) for part in first['loc']) or 'body'}: {first['msg']}"


class NoAnswer(Exception):
    """A request that got no HTTP answer. `reached`: it went out, so the peer may have acted on
    it (a call may be placed): not to be sent again blindly."""

    def __init__(self, what: str, reached: bool) -> None:
        super().__init__(what)
        self.reached = reached


async def exchange(
    http: httpx.AsyncClient, request: httpx.Request, *, timeout: float, log: structlog.stdlib.BoundLogger,
    event: str, name: str,
) -> httpx.Response:
    """Send `request` and read its answer whole, within `timeout` seconds and `MAX_ANSWER_BYTES`;
    `NoAnswer` otherwise. One log line `event` either way, naming the call `name`."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            streamed = await http.send(request, stream=True)
            try:
                response = await read_bounded(streamed)
            finally:
                await streamed.aclose()
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol) as exc:
        log.warning(event, call=name, error=type(exc).__name__)
        raise NoAnswer(f"cannot connect ({type(exc).__name__})", reached=False) from None
    except (TimeoutError, httpx.TimeoutException):
        log.warning(event, call=name, error="timeout", deadline_s=timeout)
        raise NoAnswer(f"no answer within {timeout:g} s", reached=True) from None
    except AnswerTooLarge as exc:
        log.warning(event, call=name, error="answer too large")
        raise NoAnswer(str(exc), reached=True) from None
    except httpx.HTTPError as exc:  # the connection broke after the request went out
        log.warning(event, call=name, error=type(exc).__name__)
        raise NoAnswer(f"the connection broke ({type(exc).__name__})", reached=True) from None
    log.info(event, call=name, status=response.status_code, ms=round((time.perf_counter() - started) * 1000, 1))
    return response
