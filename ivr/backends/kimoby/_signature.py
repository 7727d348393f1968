"""The `X-Kimoby-Signature` of a webhook: base64(HMAC-SHA1(key_authentication, url + raw body)).

`url` is the webhook's URL as registered with Kimoby, not the one this service sees (a proxy may
rewrite it). Kimoby signs in Ruby with `Base64.encode64`, which ends its output with a newline,
so trailing whitespace of the header is not part of the signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

__all__ = ["SIGNATURE_HEADER", "sign", "verify"]

SIGNATURE_HEADER = "X-Kimoby-Signature"


def sign(key: str, url: str, body: bytes) -> str:
    """The signature of `body` posted to `url`, without the newline Ruby adds."""
    digest = hmac.new(key.encode(), url.encode() + body, hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def verify(key: str, url: str, body: bytes, header: str | None) -> bool:
    """Whether `header` is the signature of `body` posted to `url`, compared in constant time.
    A missing or empty header, or an empty key (anyone could sign with it), is False."""
    if not key or not header or not header.strip():
        return False
    expected = sign(key, url, body).encode("ascii")
    return hmac.compare_digest(expected, header.rstrip().encode("utf-8", "replace"))
