"""The few ARI REST operations the IVR uses, over one pooled httpx client.

Every request has a deadline (`timeout`); past it, or when Asterisk cannot be reached, the
request raises `AriError` with no status. Asterisk's answers are mapped once, here:

* 404 on a channel ("Channel not found") and 409 ("Channel not in a Stasis application") mean
  the channel is no longer ours: `ChannelHangupError`.
* Any other status that is not 2xx is an `AriError` carrying it.
* Lookups (`get_channel`, `get_playback`) return `None` for 404 instead.

Log lines name the operation and the HTTP status, never the query: it carries the media (the
sounds of a code read out, one ``sound:digits/<d>`` per digit) and channel variable values.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import httpx

from ivr.errors import AriError, ChannelHangupError
from ivr.logging import get_logger

__all__ = ["DEFAULT_TIMEOUT", "MAX_MEDIA", "AriRest", "ari_base_url"]

DEFAULT_TIMEOUT = 5.0
"""Seconds an ARI request may take before it fails."""

MAX_MEDIA = 127
"""The most media one play request may list: res_ari_channels.c parses at most ``MAX_VALS`` - 1
(128 - 1) values of ``media`` and answers 400 "Too many values for media" beyond."""

_GONE = frozenset({404, 409})  # Channel not found / Channel not in a Stasis application
_log = get_logger("ivr.ari")


def ari_base_url(url: str) -> str:
    """`http://asterisk:8088`, `…/ari` or `…/ari/` → `http://asterisk:8088/ari/`."""
    base = url.rstrip("/")
    if not base.endswith("/ari"):
        base += "/ari"
    return base + "/"


class AriRest:
    """ARI's REST side for one Asterisk (`url` is its HTTP server, e.g. ``http://asterisk:8088``)."""

    def __init__(
        self,
        url: str,
        user: str,
        password: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_connections: int = 100,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._timeout = timeout
        self._http = httpx.AsyncClient(
            base_url=ari_base_url(url),
            auth=httpx.BasicAuth(user, password),
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            headers={"User-Agent": "keybox-ivr", "Accept": "application/json"},
            transport=transport,
        )

    @property
    def timeout(self) -> float:
        return self._timeout

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- channels ---------------------------------------------------------------------------

    async def get_channel(self, channel_id: str) -> dict[str, Any] | None:
        """The channel's snapshot, or None when it no longer exists."""
        response = await self._send("get_channel", "GET", _channel(channel_id), lookup=True)
        return None if response is None else _json(response)

    async def answer(self, channel_id: str) -> None:
        await self._send("answer", "POST", _channel(channel_id, "answer"))

    async def play(self, channel_id: str, playback_id: str, media: str | Sequence[str], language: str | None) -> None:
        """Start playing `media` (``sound:keybox/welcome``, or a list such as ``sound:digits/1``,
        ``sound:digits/2``) as `playback_id`.

        A list is one playback (Asterisk 15+): its media play in order, each with its own
        ``PlaybackStarted``, a ``PlaybackContinuing`` between two, one ``PlaybackFinished`` at the
        end. It goes as ONE ``media`` parameter, comma-separated: Asterisk's generated handler
        (res/res_ari_channels.c) splits each ``media`` value on commas and keeps only the last
        ``media`` parameter when there are several, so ``media=a&media=b`` would play ``b`` alone.
        Raises `ValueError` for an empty list, an empty entry or one with a comma, or more than
        `MAX_MEDIA` entries. The id is ours, so the playback's events can be waited for before
        this returns.
        """
        entries = [media] if isinstance(media, str) else list(media)
        if not entries or len(entries) > MAX_MEDIA or any(not entry or "," in entry for entry in entries):
            raise ValueError(f"a play request takes 1 to {MAX_MEDIA} media, none empty or with a comma")
        params = {"media": ",".join(entries)}
        if language:
            params["lang"] = language
        await self._send("play", "POST", _channel(channel_id, "play", playback_id), params=params)

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        await self._send("set_variable", "POST", _channel(channel_id, "variable"),
                         params={"variable": name, "value": value})

    async def continue_in_dialplan(self, channel_id: str, context: str, extension: str, priority: int) -> None:
        await self._send("continue", "POST", _channel(channel_id, "continue"),
                         params={"context": context, "extension": extension, "priority": str(priority)})

    async def continue_next(self, channel_id: str) -> None:
        """Leave the application for the dialplan's next priority after ``Stasis()``."""
        await self._send("continue", "POST", _channel(channel_id, "continue"))

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        """Hang up; a channel that is gone already is not an error."""
        await self._send("hangup", "DELETE", _channel(channel_id), params={"reason": reason}, lookup=True)

    # -- playbacks and events -----------------------------------------------------------------

    async def get_playback(self, playback_id: str) -> dict[str, Any] | None:
        """The playback, or None once it has finished (ARI forgets finished playbacks)."""
        response = await self._send("get_playback", "GET", f"playbacks/{quote(playback_id, safe='')}", lookup=True)
        return None if response is None else _json(response)

    async def stop_playback(self, playback_id: str) -> bool:
        """Stop a playback. False when it had finished already (404) or cannot be stopped: ARI
        answers 500 while a playback has played nothing but media it cannot control (``digits:``,
        ``number:``, ``characters:``); once one of its ``sound:`` media has started it can."""
        try:
            response = await self._send("stop_playback", "DELETE", f"playbacks/{quote(playback_id, safe='')}",
                                        lookup=True)
        except AriError as exc:
            if exc.status == 500:
                return False
            raise
        return response is not None

    async def user_event(self, name: str, application: str, channel_id: str, variables: dict[str, str]) -> None:
        """Generate a user event about the channel (delivered to the application and to AMI)."""
        await self._send("user_event", "POST", f"events/user/{quote(name, safe='')}",
                         params={"application": application, "source": f"channel:{channel_id}"},
                         json={"variables": variables})

    # -- the machinery ---------------------------------------------------------------------

    async def _send(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        lookup: bool = False,
    ) -> httpx.Response | None:
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._http.request(method, path, params=params, json=json)
        except TimeoutError:
            _log.warning("ari.request_timeout", operation=operation, deadline_s=self._timeout)
            raise AriError(f"ARI {operation} did not answer within {self._timeout:g} s") from None
        except httpx.HTTPError as exc:
            _log.warning("ari.request_failed", operation=operation, error=type(exc).__name__)
            raise AriError(f"ARI {operation} failed: {type(exc).__name__}") from None
        status = response.status_code
        if status < 300:
            return response
        if lookup and status == 404:
            return None
        if status in _GONE and path.startswith("channels/"):
            raise ChannelHangupError(f"ARI {operation}: the channel is gone (HTTP {status})")
        _log.warning("ari.request_refused", operation=operation, status=status, message=_message(response))
        raise AriError(f"ARI {operation} refused with HTTP {status}: {_message(response)}", status)


def _channel(channel_id: str, *rest: str) -> str:
    return "/".join(["channels", quote(channel_id, safe=""), *(quote(part, safe="") for part in rest)])


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise AriError(
            f"ARI answered HTTP {response.status_code} with a body that is not JSON", response.status_code
        ) from None
    if not isinstance(body, dict):
        raise AriError("ARI answered with JSON that is not an object", response.status_code)
    return body


def _message(response: httpx.Response) -> str:
    """ARI's ``{"message": …}`` for an error, cut short."""
    try:
        body = response.json()
    except ValueError:
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    return str(message)[:120] if message else ""
