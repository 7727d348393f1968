"""Retries within the deadline: what is tried again (5xx, 9001, a reset, an attempt that hangs),
what never is (a 4xx, an ApiError), and that each retry is told by method and cause."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from support.raw_http import CLOSE, HANG, http, with_token

from ivr.backends.kimvoice import KimVoiceClient
from ivr.errors import DeadlineExceededError, KimVoiceError, UnavailableError

HEALTHY = http("200 OK", b'{"operationalMode": "Normal", "message": null}')
MAINTENANCE = http("503 Service Unavailable", b'{"errorCode": 9001, "message": "maintenance"}')


def first_then(first: bytes, then: bytes = HEALTHY, times: int = 1) -> Callable[[str], bytes]:
    """Answers the first `times` HealthChecks with `first`, every later one with `then`."""
    answered: list[str] = []

    def answer(line: str) -> bytes:
        answered.append(line)
        return first if sum("HealthCheck" in a for a in answered) <= times else then
    return with_token_fn(answer)


def with_token_fn(api: Callable[[str], bytes]) -> Callable[[str], bytes]:
    token = with_token(b"")
    return lambda line: token(line) if "LogOn" in line else api(line)


def retried(client: KimVoiceClient) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    client.on_retry.append(lambda method, cause: seen.append((method, cause)))
    return seen


@pytest.mark.parametrize(("first", "cause"), [
    (http("500 Internal Server Error", b""), "500"),
    (http("502 Bad Gateway", b"<html>proxy</html>", content_type="text/html"), "502"),
    (http("503 Service Unavailable", b""), "503"),
    (http("504 Gateway Timeout", b""), "504"),
    (MAINTENANCE, "maintenance"),
])
async def test_a_failed_attempt_is_tried_again(serve, make_client, first: bytes, cause: str) -> None:
    url, raw = await serve(first_then(first))
    client = make_client(url)
    seen = retried(client)
    health = await client.health_check(timeout=2.0)
    assert health.operational_mode.value == "Normal"
    assert sum("HealthCheck" in r for r in raw.requests) == 2
    assert seen == [("HealthCheck", cause)]


async def test_a_reset_connection_is_tried_again(serve, make_client) -> None:
    # The first close comes on the connection kept from the log-on: the pool itself takes a
    # fresh one for that (a stale keep-alive). The second, on a fresh connection, is ours to retry.
    url, raw = await serve(first_then(CLOSE, times=2))
    client = make_client(url)
    seen = retried(client)
    health = await client.health_check(timeout=2.0)
    assert health.operational_mode.value == "Normal"
    assert sum("HealthCheck" in r for r in raw.requests) == 3 and seen == [("HealthCheck", "reset")]


async def test_an_attempt_that_hangs_is_given_up_inside_the_deadline_and_tried_again(serve, make_client) -> None:
    url, raw = await serve(first_then(HANG))
    client = make_client(url)
    seen = retried(client)
    health = await client.health_check(timeout=1.0)  # the first attempt may take 0.75 s of it
    assert health.operational_mode.value == "Normal"
    assert seen == [("HealthCheck", "timeout")] and sum("HealthCheck" in r for r in raw.requests) == 2


async def test_a_kimvoice_that_always_hangs_ends_at_the_deadline(serve, make_client) -> None:
    url, raw = await serve(with_token_fn(lambda line: HANG))
    client = make_client(url)
    started = time.monotonic()
    with pytest.raises(DeadlineExceededError, match=r"within 0\.5 s"):
        await client.health_check(timeout=0.5)
    assert time.monotonic() - started < 1.5, "retries stayed inside the deadline"
    assert sum("HealthCheck" in r for r in raw.requests) >= 2


@pytest.mark.parametrize("answer", [
    http("500 Internal Server Error", b'{"errorCode": 3001, "message": "no such box"}'),
    http("404 Not Found", b'{"errorCode": 1002, "message": "unknown key"}'),
    http("400 Bad Request", b'{"title": "validation"}'),
])
async def test_an_answer_of_kimvoice_is_never_tried_again(serve, make_client, answer: bytes) -> None:
    url, raw = await serve(with_token_fn(lambda line: answer))
    client = make_client(url)
    seen = retried(client)
    with pytest.raises(KimVoiceError):
        await client.identify_key_holder(123456)
    assert sum("Identify" in r for r in raw.requests) == 1 and seen == []


async def test_three_failures_give_up_with_the_last_answer(serve, make_client) -> None:
    url, raw = await serve(with_token_fn(lambda line: http("500 Internal Server Error", b"")))
    client = make_client(url)
    seen = retried(client)
    with pytest.raises(UnavailableError, match="HTTP 500"):
        await client.health_check()
    assert sum("HealthCheck" in r for r in raw.requests) == 3 and seen == [("HealthCheck", "500")] * 2
