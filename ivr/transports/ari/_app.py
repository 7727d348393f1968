"""`AriApp`: the Stasis application ``keybox`` on Asterisk's ARI, running one call per channel.

The application holds one WebSocket on ``/ari/events?app=keybox`` (HTTP Basic auth, so the
password never sits in a URL or a log line) and one pooled REST client. For each
``StasisStart`` it builds an `AriCall` and runs the handler (the service's, which runs the flow)
in its own task, inside `bind_call`; when the handler returns, the call hangs up a channel the
flow left in Stasis. Events about a channel go to its call, in order, without waiting.

When the WebSocket drops, the application reconnects with a bounded exponential backoff. Calls
are not lost: their state lives here, their REST requests go on, and once the socket is back
each call asks ARI what the lost events would have said (`AriCall.resync`). Asterisk keeps no
events for a disconnected application, so keys pressed during the outage are lost; an
operation waiting meanwhile keeps waiting up to its own timeout.

`drain` stops taking calls (a new channel is sent on in the dialplan, as a FastAGI connection
refused would be), lets calls in progress end within the grace, cancels the rest, then closes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any
from urllib.parse import quote

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus, WebSocketException

from ivr.errors import ChannelError
from ivr.logging import get_logger
from ivr.sessions import CallSessions
from ivr.transports.ari._call import FINISH_TIMEOUT, AriCall
from ivr.transports.ari._rest import DEFAULT_TIMEOUT, AriRest, ari_base_url

__all__ = ["AriApp", "AriCallHandler"]

AriCallHandler = Callable[[AriCall], Awaitable[object]]

PING_INTERVAL = 20.0
"""Seconds between WebSocket pings; a peer silent for as long again counts as gone."""

_KEEP_FINISHED = 1024  # finished call ids remembered for `wait_call`
_log = get_logger("ivr.ari")
# The websockets library logs handshake headers (our Authorization) and every frame (the keys
# callers press) at DEBUG: it gets a logger of its own that never says more than warnings.
_WS_LOG = logging.getLogger("ivr.ari.websocket")
_WS_LOG.setLevel(logging.WARNING)


class AriApp:
    """The Stasis application `app` on the Asterisk whose HTTP server is `url`.

    `handler(call)` runs once per call. `backoff` is the first reconnect delay, doubled per
    failed attempt up to `max_backoff` (with jitter). `timeout` bounds each REST request and
    the WebSocket handshake. `announce_input`: see `AriCall`.
    """

    def __init__(
        self,
        handler: AriCallHandler,
        url: str,
        user: str,
        password: str,
        app: str = "keybox",
        *,
        timeout: float = DEFAULT_TIMEOUT,
        backoff: float = 0.05,
        max_backoff: float = 5.0,
        finish_timeout: float = FINISH_TIMEOUT,
        announce_input: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._handler = handler
        self._url = url
        self._user = user
        self._password = password
        self.app = app
        self._timeout = timeout
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._finish_timeout = finish_timeout
        self._announce_input = announce_input
        self._transport = transport
        self._rest: AriRest | None = None
        self._runner: asyncio.Task[None] | None = None
        self._ws: ClientConnection | None = None
        self._connected = asyncio.Event()
        self._calls: dict[str, AriCall] = {}
        self._sessions = CallSessions("ari")
        self._done: OrderedDict[str, asyncio.Future[None]] = OrderedDict()
        self._background: set[asyncio.Task[None]] = set()
        self._draining = False
        self._stopping = False
        self.connections = 0
        """How many times the WebSocket was opened (1 + the reconnections)."""

    # -- state -----------------------------------------------------------------------------

    @property
    def active(self) -> int:
        """Calls in progress: in the handler, or ending."""
        return self._sessions.active

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def events_url(self) -> str:
        """The events WebSocket, without credentials."""
        base = httpx.URL(ari_base_url(self._url))
        base = base.copy_with(scheme="wss" if base.scheme == "https" else "ws", userinfo=b"")
        return str(base.join(f"events?app={quote(self.app, safe='')}&subscribeAll=false"))

    # -- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start connecting (in the background: Asterisk may come up later)."""
        if self._runner is not None:
            raise RuntimeError("the ARI application was started already")
        self._rest = AriRest(self._url, self._user, self._password, timeout=self._timeout,
                             transport=self._transport)
        self._runner = asyncio.get_running_loop().create_task(self._run_events())
        _log.info("ari.starting", app=self.app, url=self.events_url.split("?")[0])

    async def wait_connected(self, timeout: float) -> None:
        """Until the WebSocket is open; `TimeoutError` after `timeout` seconds."""
        async with asyncio.timeout(timeout):
            await self._connected.wait()

    async def drain(self, grace: float) -> None:
        """No new calls; calls in progress end within `grace` seconds, then are cancelled (each
        still hangs up its channel). Then the WebSocket and the REST client close."""
        self._draining = True
        await self._sessions.drain(grace)
        await self.close()

    async def close(self) -> None:
        """Close the WebSocket and the REST client now (calls in progress are left as they are)."""
        self._stopping = True
        if self._background:  # calls being sent on, resyncs: their requests end first
            await asyncio.wait(set(self._background), timeout=self._timeout)
        if self._runner is not None:
            self._runner.cancel()
            try:
                await self._runner
            except asyncio.CancelledError:
                pass
            self._runner = None
        if self._rest is not None:
            await self._rest.aclose()
            self._rest = None

    async def wait_call(self, call_id: str, timeout: float) -> None:
        """Until the call on channel `call_id` has ended (its record kept); at once if it has."""
        done = self._done_future(call_id)
        async with asyncio.timeout(timeout):
            await asyncio.shield(done)

    # -- the events WebSocket --------------------------------------------------------------

    async def _run_events(self) -> None:
        failures = 0
        token = base64.b64encode(f"{self._user}:{self._password}".encode()).decode("ascii")
        headers = {"Authorization": f"Basic {token}"}
        while not self._stopping:
            try:
                async with connect(
                    self.events_url,
                    additional_headers=headers,
                    user_agent_header="keybox-ivr",
                    open_timeout=self._timeout,
                    ping_interval=PING_INTERVAL,
                    ping_timeout=PING_INTERVAL,
                    close_timeout=1.0,
                    proxy=None,
                    logger=_WS_LOG,
                ) as ws:
                    failures = 0
                    self._ws = ws
                    self.connections += 1
                    _log.info("ari.connected", app=self.app, reconnected=self.connections > 1,
                              calls=len(self._calls))
                    if self.connections > 1:
                        for call in list(self._calls.values()):
                            self._spawn(call.resync())
                    self._connected.set()
                    async for message in ws:
                        self._dispatch(message)
                _log.warning("ari.disconnected", app=self.app, calls=len(self._calls))
            except asyncio.CancelledError:
                raise
            except InvalidStatus as exc:
                _log.error("ari.refused", app=self.app, status=exc.response.status_code)
            except (OSError, TimeoutError, WebSocketException) as exc:
                _log.warning("ari.disconnected", app=self.app, error=type(exc).__name__, calls=len(self._calls))
            finally:
                self._ws = None
                self._connected.clear()
            if self._stopping:
                return
            delay = min(self._max_backoff, self._backoff * 2**failures)
            failures += 1
            await asyncio.sleep(delay * random.uniform(0.75, 1.0))

    def _dispatch(self, message: str | bytes) -> None:
        try:
            event = json.loads(message)
        except ValueError:
            _log.warning("ari.bad_event")
            return
        if not isinstance(event, dict):
            return
        if event.get("type") == "StasisStart":
            self._stasis_start(event)
            return
        channel_id = _channel_of(event)
        call = self._calls.get(channel_id) if channel_id else None
        if call is not None:
            call.handle_event(event)

    def _stasis_start(self, event: Mapping[str, Any]) -> None:
        channel = event.get("channel")
        channel_id = channel.get("id") if isinstance(channel, Mapping) else None
        if not channel_id or self._rest is None:
            return
        assert isinstance(channel, Mapping)
        if self._draining:
            _log.warning("ari.refused_draining", channel=channel_id)
            self._spawn(self._send_on(str(channel_id)))
            return
        if channel_id in self._calls:
            return
        args = event.get("args")
        call = AriCall(self._rest, self.app, channel, [str(a) for a in args] if isinstance(args, list) else [],
                       announce_input=self._announce_input)
        self._calls[call.call_id] = call
        self._done_future(call.call_id)
        self._sessions.start(self._session(call))

    # -- per call --------------------------------------------------------------------------

    async def _session(self, call: AriCall) -> None:
        try:
            with self._sessions.boundary():
                await self._sessions.run(call, self._handler, self._finish_timeout)
        finally:
            self._calls.pop(call.call_id, None)
            done = self._done_future(call.call_id)
            if not done.done():
                done.set_result(None)
            self._prune()

    async def _send_on(self, channel_id: str) -> None:
        """A call that came while draining goes on in the dialplan (after ``Stasis()``)."""
        if self._rest is None:
            return
        try:
            await self._rest.continue_next(channel_id)
        except ChannelError as exc:
            _log.warning("ari.send_on_failed", error=str(exc))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` in the background, holding it until it ends (the loop keeps only weak refs)."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _done_future(self, call_id: str) -> asyncio.Future[None]:
        done = self._done.get(call_id)
        if done is None:
            done = self._done[call_id] = asyncio.get_running_loop().create_future()
        return done

    def _prune(self) -> None:
        while len(self._done) > _KEEP_FINISHED:
            oldest, future = next(iter(self._done.items()))
            if not future.done():
                break
            del self._done[oldest]


def _channel_of(event: Mapping[str, Any]) -> str | None:
    """The channel an event is about: its ``channel``, or a playback's ``channel:<id>`` target."""
    channel = event.get("channel")
    if isinstance(channel, Mapping) and channel.get("id"):
        return str(channel["id"])
    playback = event.get("playback")
    if isinstance(playback, Mapping):
        target = str(playback.get("target_uri") or "")
        if target.startswith("channel:"):
            return target.removeprefix("channel:")
    return None
