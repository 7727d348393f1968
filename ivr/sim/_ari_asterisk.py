"""The simulated Asterisk's ARI: a real HTTP + WebSocket server on loopback, and its channels.

`SimulatedAri` serves the subset of ARI the IVR's `ivr.transports.ari` transport uses, answered the way
Asterisk 20's res_ari / res_stasis_playback answer it:

* Auth: HTTP Basic or ``?api_key=user:password``; anything else is 401.
* ``GET /ari/events?app=NAME`` is the application's event WebSocket. One connection per
  application (a new one replaces the old). Events for an application that is not connected
  are lost, as Asterisk keeps none; each lost event is noted in the channel's transcript.
* Channels: ``GET``/``DELETE /ari/channels/{id}``, ``POST …/answer``, ``POST …/play`` and
  ``…/play/{playbackId}`` (``media``, ``lang``), ``GET``/``POST …/variable``,
  ``POST …/continue``. A channel that no longer exists is 404; one that left Stasis is 409.
* ``media`` is a comma-separated list of ``sound:…`` / ``digits:…`` media, played in order as
  one playback (Asterisk 15+). As in Asterisk's generated handler (res/res_ari_channels.c), a
  ``media`` parameter given several times counts only by its last value (noted in the
  transcript); no media or an empty one is 500 "Failed to queue media for playback"; 128 or
  more are 400 "Too many values for media".
* Playbacks: ``GET``/``DELETE /ari/playbacks/{id}``; a finished playback is 404; a queued one is
  cancelled; a playing one that has played no ``sound:`` media yet (``digits:``) cannot be
  stopped (500 "Could not stop playback").
* Each media of a playback is ``PlaybackStarted`` (``media_uri`` that media, ``next_media_uri``
  the next one, if any) then ``PlaybackContinuing``, except the last, which ends the playback
  with ``PlaybackFinished``: state ``done``, or ``failed`` when the last media failed (a sound
  that does not exist in the channel's language, Asterisk 16+) or the caller hung up during
  any media. A missing sound that is not the last is skipped, as res_stasis_playback does.
* The digit sounds ``digits/0``…``digits/9``, ``digits/star``, ``digits/pound`` are core sounds
  the simulated Asterisk always has (as ``digits:`` media assume); a playback of nothing but
  them is one ``digits`` transcript event with the digits, as a ``digits:`` playback is.
* `SimulatedAri.log` keeps the lines res_stasis_playback writes at NOTICE and WARNING (the
  console and messages.log of the line's logger.conf) naming a playback's media: "Playback
  failed for …", "… stopped for …", "… canceled for …". `requests` keeps every HTTP request,
  `play_media` the media list of each play request.
* ``POST /ari/events/user/{name}`` (``application``, ``source=channel:{id}``) is echoed to
  the application as ``ChannelUserevent``.

Each `SimulatedAriChannel` plays the caller's part with the same `Caller`, `SoundLibrary` and
transcript `Event`s as the FastAGI simulator. ARI has no "collect digits" request, so the
caller learns that the IVR waits for keys from the ``IvrInput`` user event the transport sends
when told to (`IVR_ARI_ANNOUNCE_INPUT`: off by default, on for every simulated line; see
`ivr.transports.ari.AriCall`); without it the caller never types. For ``get_data`` the caller types once
the announced prompt has played to its end; for ``wait_for_digit`` at once. Keys go to the application as
``ChannelDtmfReceived`` events. A caller who hangs up during a sound (`Caller.hangup_on`) makes
that playback end ``failed`` between ``ChannelHangupRequest`` and ``StasisEnd``/``ChannelDestroyed``;
one who hangs up a while after a sound (`Caller.hangup_after`) hangs up then, whatever is going on.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from ivr.embedded_http import EmbeddedHttpServer
from ivr.sim._callers import DTMF_KEYS, Caller, InputRequest
from ivr.sim._sounds import SoundLibrary
from ivr.sim._transcript import Event, Transcript

__all__ = ["ARI_PASSWORD", "ARI_USER", "INPUT_EVENT", "AriRequest", "SimulatedAri", "SimulatedAriChannel"]

ARI_USER = "asterisk"
ARI_PASSWORD = "asterisk"
INPUT_EVENT = "IvrInput"
"""The user event by which the transport says it waits for keys (`ivr.transports.ari.INPUT_EVENT`)."""

TRANSFER_VARIABLE = "IVR_TRANSFER"
TRANSFER_CONTEXT = "keybox-operator"

_DTMF_MS = 100
_MAX_VALS = 128  # res_ari_channels.c: a parameter with this many values or more is refused
_DIGIT_SOUNDS = {f"digits/{digit}": digit for digit in "0123456789"} | {"digits/star": "*", "digits/pound": "#"}
_ids = itertools.count(1)


@dataclass(slots=True)
class AriRequest:
    """One HTTP request as the simulated ARI received it (`query` percent-decoded)."""

    method: str
    path: str
    query: str
    body: bytes = b""

    @property
    def target(self) -> str:
        """The path and the decoded query, as a request line shows them."""
        return f"{self.path}?{self.query}" if self.query else self.path


class SimulatedAri:
    """ARI on ``http://127.0.0.1:<port>`` (`url` once started) with its channels.

    `playback_seconds` is how long each playback lasts (0: it ends at once, which is what the
    end-to-end tests want; more lets a test press keys during a prompt).
    """

    def __init__(
        self,
        sounds: SoundLibrary,
        *,
        user: str = ARI_USER,
        password: str = ARI_PASSWORD,
        host: str = "127.0.0.1",
        port: int = 0,
        playback_seconds: float = 0.0,
    ) -> None:
        self.sounds = sounds
        self.playback_seconds = playback_seconds
        self._credentials = f"{user}:{password}"
        self.channels: dict[str, SimulatedAriChannel] = {}
        self.playbacks: dict[str, _Playback] = {}
        self.connections = 0
        """How many event WebSockets were accepted so far."""
        self.attempts = 0
        """How many event WebSockets were asked for (accepted or not)."""
        self.refuse_connections = False
        """While set, event WebSockets are refused with 503 (Asterisk restarting)."""
        self.stopped_playbacks: list[str] = []
        """The media playing (or first, if queued) when ``DELETE /playbacks/{id}`` stopped a
        playback, in order."""
        self.requests: list[AriRequest] = []
        """Every HTTP request received (the event WebSockets aside), in order."""
        self.play_media: list[list[str]] = []
        """The media list of each play request accepted, as Asterisk parses it, in order."""
        self.log: list[str] = []
        """What res_stasis_playback would log at NOTICE/WARNING: ``"<LEVEL>: <channel id>:
        Playback failed for <media>"`` (also ``stopped``, ``canceled``)."""
        self._attempted = asyncio.Condition()
        self._closing: set[asyncio.Task[None]] = set()
        self._apps: dict[str, _Connection] = {}
        self._app_events: dict[str, asyncio.Event] = {}
        self._server = EmbeddedHttpServer(self._asgi(), host, port)

    @property
    def url(self) -> str:
        return self._server.url

    async def start(self) -> str:
        return await self._server.start()

    async def stop(self) -> None:
        for connection in list(self._apps.values()):
            await connection.close(1001)
        for channel in list(self.channels.values()):
            channel.stop()
        await self._server.stop()

    async def __aenter__(self) -> SimulatedAri:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- applications ------------------------------------------------------------------------

    def connected(self, app: str) -> bool:
        return app in self._apps

    async def wait_connected(self, app: str, timeout: float) -> None:
        """Until application `app` has its event WebSocket; `TimeoutError` after `timeout`."""
        async with asyncio.timeout(timeout):
            await self._app_event(app).wait()

    async def disconnect(self, app: str) -> None:
        """Drop the application's WebSocket (as a network failure would); events are lost until
        it connects again."""
        connection = self._apps.pop(app, None)
        self._app_event(app).clear()
        if connection is not None:
            await connection.close(1011)

    def drop(self, app: str) -> None:
        """`disconnect` from synchronous code (a caller's `observe`): from now on events are
        lost; the socket closes in the background."""
        connection = self._apps.pop(app, None)
        self._app_event(app).clear()
        if connection is not None:
            connection.open = False
            task = asyncio.get_running_loop().create_task(connection.close(1011, force=True))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def wait_attempts(self, count: int, timeout: float) -> None:
        """Until `count` event WebSockets have been asked for in all."""
        async with asyncio.timeout(timeout), self._attempted:
            await self._attempted.wait_for(lambda: self.attempts >= count)

    async def emit(self, app: str, event: dict[str, Any], channel: SimulatedAriChannel | None = None) -> bool:
        """Send `event` to `app`; False (and a note) when it is not connected: the event is lost."""
        event = {**event, "application": app, "timestamp": _timestamp()}
        connection = self._apps.get(app)
        if connection is not None and await connection.send(event):
            return True
        if channel is not None:
            channel.lost_events += 1
            channel.transcript.note(f"{event['type']} lost: the application {app!r} was not connected")
        return False

    def _app_event(self, app: str) -> asyncio.Event:
        return self._app_events.setdefault(app, asyncio.Event())

    def asterisk_log(self, level: str, channel: SimulatedAriChannel, message: str) -> None:
        """Keep a line Asterisk would log (`log`)."""
        self.log.append(f"{level}: {channel.id}: {message}")

    # -- channels ----------------------------------------------------------------------------

    def new_channel(
        self,
        app: str,
        args: Sequence[str],
        *,
        caller: Caller,
        language: str = "en",
        caller_id: str | None = None,
        answered: bool = False,
        variables: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> SimulatedAriChannel:
        channel = SimulatedAriChannel(self, app, args, caller=caller, language=language, caller_id=caller_id,
                                      answered=answered, variables=variables, timeout=timeout)
        self.channels[channel.id] = channel
        return channel

    # -- HTTP --------------------------------------------------------------------------------

    def _asgi(self) -> ASGIApp:
        channel = "/ari/channels/{channel_id}"
        routes = [
            WebSocketRoute("/ari/events", self._events),
            Route(channel, self._channel, methods=["GET", "DELETE"]),
            Route(channel + "/answer", self._answer, methods=["POST"]),
            Route(channel + "/play", self._play, methods=["POST"]),
            Route(channel + "/play/{playback_id}", self._play, methods=["POST"]),
            Route(channel + "/variable", self._variable, methods=["GET", "POST"]),
            Route(channel + "/continue", self._continue, methods=["POST"]),
            Route("/ari/playbacks/{playback_id}", self._playback, methods=["GET", "DELETE"]),
            Route("/ari/events/user/{event_name}", self._user_event, methods=["POST"]),
        ]
        app = Starlette(routes=routes)

        async def recording(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            request = AriRequest(scope["method"], scope["path"], unquote_plus(scope["query_string"].decode("latin-1")))
            self.requests.append(request)

            async def receive_body() -> Message:
                message = await receive()
                if message["type"] == "http.request":
                    request.body += message.get("body", b"")
                return message

            await app(scope, receive_body, send)

        return recording

    def _authorized(self, headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
        if query.get("api_key") is not None:
            return secrets.compare_digest(query["api_key"], self._credentials)
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = base64.b64decode(token, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return secrets.compare_digest(given, self._credentials)

    async def _events(self, websocket: WebSocket) -> None:
        app = websocket.query_params.get("app", "")
        async with self._attempted:
            self.attempts += 1
            self._attempted.notify_all()
        if self.refuse_connections:
            await websocket.send_denial_response(_error(503, "Service Unavailable"))
            return
        if not self._authorized(websocket.headers, websocket.query_params):
            await websocket.send_denial_response(_error(401, "Authentication required"))
            return
        if not app:
            await websocket.send_denial_response(_error(400, "app parameter is required"))
            return
        await websocket.accept()
        connection = _Connection(websocket)
        previous = self._apps.get(app)
        self._apps[app] = connection
        self.connections += 1
        if previous is not None:
            await previous.send({"type": "ApplicationReplaced", "application": app, "timestamp": _timestamp()})
            await previous.close(1000)
        self._app_event(app).set()
        try:
            while True:
                await websocket.receive_text()  # ARI takes nothing on this socket
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            if self._apps.get(app) is connection:
                del self._apps[app]
                self._app_event(app).clear()

    def _find(self, request: Request) -> tuple[SimulatedAriChannel | None, Response | None]:
        """The channel a request names, or the response Asterisk gives instead."""
        if not self._authorized(request.headers, request.query_params):
            return None, _error(401, "Authentication required")
        channel = self.channels.get(request.path_params["channel_id"])
        if channel is None:
            return None, _error(404, "Channel not found")
        channel.requests += 1
        if not channel.exists:
            channel.requests_after_end += 1
            return None, _error(404, "Channel not found")
        return channel, None

    def _in_stasis(self, request: Request) -> tuple[SimulatedAriChannel | None, Response | None]:
        channel, refusal = self._find(request)
        if channel is not None and not channel.in_stasis:
            channel.requests_after_end += 1
            return None, _error(409, "Channel not in Stasis application")
        return channel, refusal

    async def _channel(self, request: Request) -> Response:
        channel, refusal = self._find(request)
        if channel is None:
            return refusal or _error(404, "Channel not found")
        if request.method == "GET":
            return JSONResponse(channel.snapshot())
        reason = request.query_params.get("reason", "normal")
        if reason not in ("normal", "busy", "congestion", "no_answer", "timeout", "rejected", "unallocated",
                          "normal_unspecified", "number_incomplete", "codec_mismatch", "interworking",
                          "failure", "answered_elsewhere"):
            return _error(400, "Invalid reason for hangup provided")
        await channel.hang_up("service")
        return Response(status_code=204)

    async def _answer(self, request: Request) -> Response:
        channel, refusal = self._in_stasis(request)
        if channel is None:
            return refusal or _error(404, "Channel not found")
        await channel.answer()
        return Response(status_code=204)

    async def _play(self, request: Request) -> Response:
        channel, refusal = self._in_stasis(request)
        if channel is None:
            return refusal or _error(404, "Channel not found")
        values = request.query_params.getlist("media")
        if len(values) > 1:
            channel.transcript.note(f"a play request gave media {len(values)} times: Asterisk plays only the "
                                    "last one's media (a list is ONE media parameter, comma-separated)")
        medias = values[-1].split(",") if values else []
        if len(medias) >= _MAX_VALS:
            return _error(400, "Too many values for media")
        if not medias or not all(medias):
            return _error(500, "Failed to queue media for playback")
        playback_id = request.path_params.get("playback_id") or request.query_params.get("playbackId") or (
            f"sim-playback-{next(_ids)}")
        if playback_id in self.playbacks:
            return _error(409, "A playback with the same ID already exists")
        language = request.query_params.get("lang") or channel.language
        playback = _Playback(playback_id, medias, channel, language)
        self.playbacks[playback_id] = playback
        self.play_media.append(list(medias))
        channel.enqueue(("play", playback))
        return JSONResponse(playback.json(), status_code=201, headers={"Location": f"/playbacks/{playback_id}"})

    async def _variable(self, request: Request) -> Response:
        channel, refusal = self._in_stasis(request) if request.method == "POST" else self._find(request)
        if channel is None:
            return refusal or _error(404, "Channel not found")
        name = request.query_params.get("variable")
        if not name:
            return _error(400, "Variable name is required")
        if request.method == "GET":
            value = channel.lookup(name)
            return _error(404, "Provided variable was not found") if value is None else JSONResponse({"value": value})
        await channel.set_variable(name, request.query_params.get("value", ""))
        return Response(status_code=204)

    async def _continue(self, request: Request) -> Response:
        channel, refusal = self._in_stasis(request)
        if channel is None:
            return refusal or _error(404, "Channel not found")
        params = request.query_params
        await channel.continue_in_dialplan(params.get("context"), params.get("extension"), params.get("priority"))
        return Response(status_code=204)

    async def _playback(self, request: Request) -> Response:
        if not self._authorized(request.headers, request.query_params):
            return _error(401, "Authentication required")
        playback = self.playbacks.get(request.path_params["playback_id"])
        if playback is None or playback.over:
            return _error(404, "Playback not found")
        if request.method == "GET":
            return JSONResponse(playback.json())
        if playback.state in ("playing", "continuing") and not playback.controllable:
            return _error(500, "Could not stop playback")
        self.stopped_playbacks.append(playback.media)
        playback.stop()
        return Response(status_code=204)

    async def _user_event(self, request: Request) -> Response:
        if not self._authorized(request.headers, request.query_params):
            return _error(401, "Authentication required")
        app = request.query_params.get("application", "")
        if app not in self._apps:
            return _error(404, "Application not found")
        source = request.query_params.get("source", "")
        channel = self.channels.get(source.removeprefix("channel:")) if source.startswith("channel:") else None
        if channel is None or not channel.exists:
            return _error(422, "Event source not found")
        try:
            body = await request.json() if await request.body() else {}
        except ValueError:
            return _error(400, "Invalid userevent data")
        variables = body.get("variables") if isinstance(body, dict) else None
        variables = {str(k): str(v) for k, v in variables.items()} if isinstance(variables, dict) else {}
        name = request.path_params["event_name"]
        await self.emit(app, {"type": "ChannelUserevent", "eventname": name, "channel": channel.snapshot(),
                              "userevent": variables}, channel)
        if name == INPUT_EVENT:
            channel.input_announced(variables)
        return Response(status_code=204)


class SimulatedAriChannel:
    """One call in the Stasis application: the channel's state, its playbacks, the caller.

    After `run`: `transcript`; `ended_by` (``service`` hung up, ``transfer``: continued to the
    operator context with ``IVR_TRANSFER`` set, ``dialplan``: continued elsewhere, ``caller``,
    or None when still up); `requests_after_end` (requests the service made for the channel
    once it was gone or out of Stasis); `lost_events`.
    """

    def __init__(
        self,
        ari: SimulatedAri,
        app: str,
        args: Sequence[str],
        *,
        caller: Caller,
        language: str,
        caller_id: str | None,
        answered: bool,
        variables: Mapping[str, str] | None,
        timeout: float,
    ) -> None:
        number = next(_ids)
        self.id = f"{time.time():.0f}.{number}"
        self.name = f"PJSIP/sim-{number:08x}"
        self.app = app
        self.args = list(args)
        self.language = language
        self.state = "Up" if answered else "Ring"
        self.transcript = Transcript()
        self.variables = dict(variables or {})
        self.exists = True
        self.in_stasis = True
        self.ended_by: str | None = None
        self.requests = 0
        self.requests_after_end = 0
        self.lost_events = 0
        self.ended = asyncio.Event()
        self._ari = ari
        self._caller = caller
        self._caller_id = caller_id or ""
        self._timeout = timeout
        self._live_until = 0.0
        self._created = datetime.now(UTC)
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._pending: InputRequest | None = None
        self._worker: asyncio.Task[None] | None = None
        self._planned_hangup: asyncio.TimerHandle | None = None
        self._hanging_up: asyncio.Task[None] | None = None  # held: the loop keeps weak references
        self._noted_unanswered = False

    # -- the call ----------------------------------------------------------------------------

    async def run(self) -> Transcript:
        """``StasisStart``, then play the caller's part until the call ends (or the caller gives
        up after `timeout`)."""
        loop = asyncio.get_running_loop()
        self._live_until = loop.time() + self._timeout
        self._worker = loop.create_task(self._work())
        try:
            await self._emit({"type": "StasisStart", "args": self.args, "channel": self.snapshot()})
            try:
                async with asyncio.timeout_at(self._live_until):
                    await self.ended.wait()
            except TimeoutError:
                self.transcript.note(f"the caller gave up: the call was still going after {self._timeout:g} s")
                await self.hang_up("caller")
        finally:
            self.stop()
        return self.transcript

    def stop(self) -> None:
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
        if self._planned_hangup is not None:
            self._planned_hangup.cancel()

    def snapshot(self) -> dict[str, Any]:
        """The channel as ARI shows it."""
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "caller": {"name": "", "number": self._caller_id},
            "connected": {"name": "", "number": ""},
            "accountcode": "",
            "dialplan": {"context": "keybox-in", "exten": "s", "priority": 2,
                         "app_name": "Stasis" if self.in_stasis else "", "app_data": ",".join([self.app, *self.args])},
            "creationtime": self._created.isoformat(timespec="milliseconds"),
            "language": self.language,
        }

    async def press(self, keys: str) -> None:
        """The caller presses `keys` now (for tests that type during a prompt)."""
        for key in keys:
            await self._emit({"type": "ChannelDtmfReceived", "digit": key, "duration_ms": _DTMF_MS,
                              "channel": self.snapshot()})

    # -- what the service asks (REST) --------------------------------------------------------

    def enqueue(self, action: tuple[str, Any]) -> None:
        self._queue.put_nowait(action)

    def input_announced(self, variables: Mapping[str, str]) -> None:
        kind = variables.get("kind")
        if kind not in ("get_data", "wait_for_digit"):
            self.transcript.note(f"{INPUT_EVENT} with an unknown kind {kind!r}")
            return
        request = InputRequest(
            kind,  # type: ignore[arg-type]
            variables.get("sound") or None,
            _int(variables.get("max_digits"), 1),
            _int(variables.get("timeout_ms"), 6000),
        )
        self.enqueue(("input", request))

    async def answer(self) -> None:
        if self.state != "Up":
            self.state = "Up"
            self._record(Event("answer"))
            await self._emit({"type": "ChannelStateChange", "channel": self.snapshot()})

    async def set_variable(self, name: str, value: str) -> None:
        self._record(Event("variable", f"{name}={value}"))
        if name.upper() == "CHANNEL(LANGUAGE)":
            self.language = value
            self._record(Event("language", value))
        else:
            self.variables[name] = value
        await self._emit({"type": "ChannelVarset", "variable": name, "value": value, "channel": self.snapshot()})

    def lookup(self, name: str) -> str | None:
        functions = {"CHANNEL(LANGUAGE)": self.language, "CHANNEL(NAME)": self.name,
                     "CALLERID(NUM)": self._caller_id, "UNIQUEID": self.id, "CHANNEL": self.name}
        return functions.get(name.upper(), self.variables.get(name))

    async def continue_in_dialplan(self, context: str | None, extension: str | None, priority: str | None) -> None:
        self.in_stasis = False
        self._stop_playbacks()
        await self._emit({"type": "StasisEnd", "channel": self.snapshot()})
        destination = self.variables.get(TRANSFER_VARIABLE)
        if context == TRANSFER_CONTEXT and destination:
            self._end("transfer")
            self._record(Event("transfer", destination))
        else:
            self._end("dialplan")
            self._record(Event("hangup", "service"))
            where = f"{context},{extension},{priority}" if context else "the priority after Stasis()"
            self.transcript.note(f"the service continued the channel at {where} without {TRANSFER_VARIABLE} "
                                 "for the operator: the dialplan goes on and hangs up")

    async def hang_up(self, by: str) -> None:
        """The channel hangs up (`by` the caller or the service); the application hears of it."""
        if not self.exists:
            return
        self.exists = False
        self._stop_playbacks()
        self._record(Event("hangup", by))
        if by == "caller":
            await self._emit({"type": "ChannelHangupRequest", "cause": 16, "channel": self.snapshot()})
        if self.in_stasis:
            self.in_stasis = False
            await self._emit({"type": "StasisEnd", "channel": self.snapshot()})
        await self._emit({"type": "ChannelDestroyed", "cause": 16, "cause_txt": "Normal Clearing",
                          "channel": self.snapshot()})
        self._end(by)

    # -- the channel's media, one action at a time -------------------------------------------

    async def _work(self) -> None:
        while True:
            kind, item = await self._queue.get()
            if not self.exists or not self.in_stasis:
                continue
            if kind == "input":
                self._pending = item
                if item.kind == "wait_for_digit":
                    self._pending = None
                    await self._ask(item)
            elif kind == "play":
                await self._play(item)

    async def _play(self, playback: _Playback) -> None:
        """Play each media in turn, with res_stasis_playback's events and log lines."""
        if playback.over:  # stopped while queued: cancelled as it comes to play
            self._ari.asterisk_log("NOTICE", self, f"Playback canceled for {playback.media}")
            await self._emit({"type": "PlaybackFinished", "playback": playback.json()})
            return
        pending, self._pending = self._pending, None
        said = _said_digits(playback.medias)
        last = len(playback.medias) - 1
        seconds = self._ari.playback_seconds / len(playback.medias)
        for index, media in enumerate(playback.medias):
            if playback.stopped.is_set():  # stopped between two media
                await self._stopped(playback)
                return
            playback.index, playback.state = index, "playing"
            await self._emit({"type": "PlaybackStarted", "playback": playback.json()})
            played, hangs_up = self._start(playback, media, said, first=index == 0)
            if hangs_up:
                await self._emit({"type": "ChannelHangupRequest", "cause": 16, "channel": self.snapshot()})
                self._ari.asterisk_log("WARNING", self, f"Playback failed for {media}")
                await self._finish(playback, "failed")
                self.exists = False
                self._record(Event("hangup", "caller"))
                self.in_stasis = False
                await self._emit({"type": "StasisEnd", "channel": self.snapshot()})
                await self._emit({"type": "ChannelDestroyed", "cause": 16, "cause_txt": "Normal Clearing",
                                  "channel": self.snapshot()})
                self._end("caller")
                return
            if not played:
                self._ari.asterisk_log("WARNING", self, f"Playback failed for {media}")
                if index == last:
                    await self._finish(playback, "failed")
                    return
            elif seconds > 0:
                try:
                    await asyncio.wait_for(playback.stopped.wait(), seconds)
                except TimeoutError:
                    pass
            if playback.stopped.is_set():
                await self._stopped(playback)
                return
            if index < last:
                playback.state = "continuing"
                await self._emit({"type": "PlaybackContinuing", "playback": playback.json()})
        await self._finish(playback, "done")
        if pending is not None and pending.kind == "get_data" and playback.medias == [f"sound:{pending.sound}"]:
            await self._ask(pending)

    def _start(self, playback: _Playback, media: str, said: str | None, *, first: bool) -> tuple[bool, bool]:
        """One media starts: (whether it plays, whether the caller hangs up during it)."""
        scheme, _, target = media.partition(":")
        if scheme == "sound" and (target in _DIGIT_SOUNDS or self._ari.sounds.exists(target, playback.language)):
            playback.controllable = True  # res_stasis_playback: any sound: media makes it stoppable
            if said is not None:
                if first:
                    self._heard(Event("digits", said))
            elif target in _DIGIT_SOUNDS:
                self._heard(Event("digits", _DIGIT_SOUNDS[target]))
            else:
                self._heard(self._ari.sounds.describe(target))
            return True, self._hangs_up_on(target)
        if scheme == "sound":
            self._record(Event("missing", target))
            return False, False
        if scheme == "digits" and target and all(key in DTMF_KEYS for key in target):
            self._heard(Event("digits", target))
            return True, any(self._hangs_up_on(f"digits/{digit}") for digit in target)
        self.transcript.note(f"media {media!r}: not simulated; it failed")
        return False, False

    async def _stopped(self, playback: _Playback) -> None:
        """The end of a playback stopped by DELETE, or by the channel's hang-up or continue. (The
        state stays ``done`` for a hang-up too, where Asterisk says ``failed``: nothing waits
        for a playback then, and its events would race the hang-up's.)"""
        if self.exists:
            self._ari.asterisk_log("NOTICE", self, f"Playback stopped for {playback.media}")
        else:
            self._ari.asterisk_log("WARNING", self, f"Playback failed for {playback.media}")
        await self._finish(playback, "done")

    async def _finish(self, playback: _Playback, state: str) -> None:
        playback.state = state
        playback.over = True
        await self._emit({"type": "PlaybackFinished", "playback": playback.json()})

    async def _ask(self, request: InputRequest) -> None:
        """The caller's answer to `request`: keys sent as DTMF, silence, or a hang-up."""
        try:
            async with asyncio.timeout_at(self._live_until):
                keys = await self._caller.keys_for(request)
        except TimeoutError:
            self.transcript.note(f"the caller gave up: the call was still going after {self._timeout:g} s")
            keys = None
        if keys is None:
            await self.hang_up("caller")
            return
        keys = "".join(key for key in keys if key in DTMF_KEYS)
        if request.kind == "wait_for_digit":
            keys = keys[:1]
        self._record(Event("pressed", keys) if keys else Event("silence"))
        await self.press(keys)

    # -- helpers ---------------------------------------------------------------------------

    def _hangs_up_on(self, sound: str) -> bool:
        """Whether the caller hangs up while `sound` plays; plans their hang-up for later, if any."""
        later = self._caller.hangup_after(sound)
        if later is not None and self._planned_hangup is None:
            self._planned_hangup = asyncio.get_running_loop().call_later(later, self._hang_up_as_planned)
        return self._caller.hangup_on(sound)

    def _hang_up_as_planned(self) -> None:
        self._hanging_up = asyncio.get_running_loop().create_task(self.hang_up("caller"))

    def _stop_playbacks(self) -> None:
        for playback in self._ari.playbacks.values():
            if playback.channel is self and not playback.over:
                playback.over = True
                playback.stopped.set()

    def _end(self, by: str) -> None:
        if self.ended_by is None:
            self.ended_by = by
        self.ended.set()

    def _record(self, event: Event) -> None:
        self.transcript.add(event)
        self._caller.observe(event)

    def _heard(self, event: Event) -> None:
        if self.state != "Up" and not self._noted_unanswered:
            self._noted_unanswered = True
            self.transcript.note("sound played before answer: a caller on an unanswered channel hears nothing")
        self._record(event)

    async def _emit(self, event: dict[str, Any]) -> bool:
        return await self._ari.emit(self.app, event, self)


class _Playback:
    def __init__(self, playback_id: str, medias: list[str], channel: SimulatedAriChannel, language: str) -> None:
        self.id = playback_id
        self.medias = medias
        self.index = 0  # the media playing (the first while queued)
        self.channel = channel
        self.language = language
        self.state = "queued"
        self.controllable = False  # until a sound: media starts (digits: alone never is)
        self.over = False
        self.stopped = asyncio.Event()

    @property
    def media(self) -> str:
        return self.medias[self.index]

    def stop(self) -> None:
        if self.state == "queued":
            self.over = True
        self.stopped.set()

    def json(self) -> dict[str, Any]:
        """As stasis_app_playback_to_json: the current media, and the next one when there is one."""
        data = {"id": self.id, "media_uri": self.media}
        if self.index < len(self.medias) - 1:
            data["next_media_uri"] = self.medias[self.index + 1]
        return data | {"target_uri": f"channel:{self.channel.id}", "language": self.language, "state": self.state}


class _Connection:
    """One event WebSocket; sends are serialized, a failed send closes it."""

    def __init__(self, websocket: WebSocket) -> None:
        self._websocket = websocket
        self._lock = asyncio.Lock()
        self.open = True

    async def send(self, event: dict[str, Any]) -> bool:
        if not self.open:
            return False
        async with self._lock:
            try:
                await self._websocket.send_text(json.dumps(event))
            except (WebSocketDisconnect, RuntimeError, OSError):
                self.open = False
                return False
        return True

    async def close(self, code: int, *, force: bool = False) -> None:
        if not self.open and not force:
            return
        self.open = False
        async with self._lock:
            try:
                await self._websocket.close(code)
            except (RuntimeError, OSError):
                pass


def _error(status: int, message: str) -> Response:
    return JSONResponse({"message": message}, status_code=status)


def _timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _said_digits(medias: Sequence[str]) -> str | None:
    """The digits a list of nothing but digit sounds says (``sound:digits/4``… → ``4``…), else None."""
    digits = ""
    for media in medias:
        digit = _DIGIT_SOUNDS.get(media.removeprefix("sound:")) if media.startswith("sound:") else None
        if digit is None:
            return None
        digits += digit
    return digits


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default
