"""The webhook signature: base64(HMAC-SHA1(key, url + raw body)), as Kimoby's guide computes it in Ruby."""

from __future__ import annotations

from ivr.backends.kimoby import sign, verify

KEY = "k3y"
URL = "https://example.test/webhooks/kimoby"
BODY = b'{"data":{"id":1},"event_name":"message_updated"}'
# `printf '%s' "$URL$BODY" | openssl dgst -sha1 -hmac k3y -binary | base64`: another implementation.
OPENSSL = "r6+c2Rvwc/pke6B2AQutTPmouo0="


def test_the_signature_is_the_one_openssl_computes() -> None:
    assert sign(KEY, URL, BODY) == OPENSSL


def test_a_valid_signature_verifies() -> None:
    assert verify(KEY, URL, BODY, OPENSSL)


def test_a_tampered_body_does_not_verify() -> None:
    assert not verify(KEY, URL, BODY.replace(b"updated", b"created"), OPENSSL)


def test_a_wrong_key_does_not_verify() -> None:
    assert not verify("another key", URL, BODY, OPENSSL)


def test_another_url_does_not_verify() -> None:
    assert not verify(KEY, URL + "/", BODY, OPENSSL)


def test_a_missing_or_empty_header_does_not_verify() -> None:
    assert not verify(KEY, URL, BODY, None)
    assert not verify(KEY, URL, BODY, "")
    assert not verify(KEY, URL, BODY, " \n")


def test_the_newline_rubys_encode64_adds_is_ignored() -> None:
    assert verify(KEY, URL, BODY, OPENSSL + "\n")
    assert verify(KEY, URL, BODY, OPENSSL + " \r\n")


def test_only_trailing_whitespace_is_ignored() -> None:
    assert not verify(KEY, URL, BODY, " " + OPENSSL)
    assert not verify(KEY, URL, BODY, OPENSSL[:-1])


def test_an_empty_key_verifies_nothing() -> None:
    assert not verify("", URL, BODY, sign("", URL, BODY))


def test_a_header_that_is_not_ascii_is_a_mismatch_not_an_error() -> None:
    assert not verify(KEY, URL, BODY, "é" * 28)
