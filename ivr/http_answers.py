"""An HTTP answer read whole within a bound: how every HTTP client of ours (KimVoice, ICTCore)
takes a peer's body, so that no peer can make the service hold more than it meant to."""

from __future__ import annotations

import httpx

__all__ = ["MAX_ANSWER_BYTES", "AnswerTooLarge", "read_bounded"]

MAX_ANSWER_BYTES = 1 << 20
"""No answer of our peers comes near a megabyte; one that does is not theirs to send."""


class AnswerTooLarge(httpx.HTTPError):
    """An answer longer than its reader accepts, or compressed: refused before it is read into memory."""


async def read_bounded(response: httpx.Response, limit: int = MAX_ANSWER_BYTES) -> httpx.Response:
    """`response` (streamed) with its body read, or `AnswerTooLarge` past `limit` bytes or when
    encoded: we never ask for compression, and a megabyte of gzip can unpack to a gigabyte."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise AnswerTooLarge(f"the answer is {encoding}-encoded, which was not asked for")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise AnswerTooLarge(f"the answer declares more than {limit} bytes")
    body = bytearray()
    async for chunk in response.aiter_raw():
        body += chunk
        if len(body) > limit:
            raise AnswerTooLarge(f"the answer is longer than {limit} bytes")
    return httpx.Response(response.status_code, headers=response.headers, content=bytes(body),
                          request=response.request, extensions=response.extensions)
