"""The client against a misbehaving server: broken answers become clear errors, never crashes."""

from __future__ import annotations

import pytest
from support.raw_http import TOKEN, http, with_token

from ivr.errors import AuthenticationError, BadResponseError, UnavailableError


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
