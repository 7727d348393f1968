"""The scripted raw KimVoice of `support.raw_http`, for the client's tests of broken answers and retries."""

from support.raw_http import make_client, serve

__all__ = ["make_client", "serve"]
