"""The Asterisk Manager (AMI) connection: panoramisk 1.4, wrapped here and nowhere else.

panoramisk is the chosen AMI library: its `Manager` matches events to handlers, its
`AMIProtocol` frames and parses the wire and matches answers to actions by ActionID, its
`Action` decides when an action's answer is complete. Those parts are sound and used as they
are. Its defects sit in how a connection is opened, kept and lost, and in two corners of
`Action`; each is closed here, in one place:

1. `Manager.connect()` returns before the login's answer (the login is a fire-and-forget done
   callback): `AmiConnection` opens the connection itself, with panoramisk's protocol, and awaits
   the login's own answer. A refused login at start is a `SettingsError` naming the setting.
2. An `Originate` without `Async` makes Asterisk hold the Manager session until the call ends:
   `AmiConnection.send` always sends an `Originate` with `Async: true`.
3. An `OriginateResponse` carries the Originate's ActionID, so panoramisk hands it to the action's
   future and event handlers never see it: `_Protocol` dispatches it as an event whatever the
   state of the action, and `_Action` takes an Originate's first `Response` as its whole answer.
4. On a lost connection panoramisk moves unanswered actions to a list it sends again after the
   next login (`FullyBooted`): an `Originate` could ring someone twice. `_Protocol.close` fails
   every action in flight with `AmiError` instead; nothing is ever sent again.
5. panoramisk's pinger sends `Ping` and never looks at the answer, so a half-open connection stays
   "connected" forever: the watchdog here waits for each `Ping`'s answer, with a deadline, and
   drops and reconnects a connection that stays silent.
6. `Action.multi` reads `self['async']` for any answer ending "successfully queued": `PlayDTMF`
   (and any action without `Async`) raises `KeyError('async')` inside `data_received`, which kills
   the connection. `_Action.multi` treats a missing `Async` as false.

Why not a subclass of `Manager`: its defective part is its connection life (connect, login,
pinger, reconnect, re-send), which is most of its code; overriding all of that would leave a
subclass whose base no longer runs. So a plain `Manager` is kept for what it does well (event
patterns and dispatch, its configuration) and is never asked to connect; the two narrow places
where panoramisk misreads the wire are subclassed (`_Action`, `_Protocol`), and the connection's
life is `AmiConnection`'s. Every action has a deadline (`AmiError` when it passes);
reconnection backs off from `reconnect_min` to `reconnect_max`. The secret is never logged:
panoramisk logs through `_QuietLog`, which hides it. The wrapper reaches into panoramisk's
internals (`responses`, `Action.multi`, `handle_message`), so the version is pinned: 1.4.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from panoramisk import Manager  # type: ignore[import-untyped]
from panoramisk.actions import Action  # type: ignore[import-untyped]
from panoramisk.ami_protocol import AMIProtocol  # type: ignore[import-untyped]
from panoramisk.message import Message  # type: ignore[import-untyped]

from ivr.errors import AmiError, PlatformUnavailableError, SettingsError
from ivr.logging import get_logger

__all__ = ["AmiConnection", "AmiMessage", "ConnectionLost", "EventStream"]

log = get_logger(__name__)

Headers = Mapping[str, str | Sequence[str]]
"""An action to send: a list value is one header each (`Variable`)."""

EVENTS = "call,user"
"""The event classes asked for at login: the calls' own events and the bridge's UserEvent. The
Manager user needs `read = call,user` and `write = originate,reporting` (Originate,
CoreShowChannels), as `asterisk-conf/manager.conf` has them."""


@dataclass(frozen=True)
class AmiMessage:
    """An AMI response or event, as plain text: header names without case, repeated headers kept."""

    values: Mapping[str, tuple[str, ...]]

    @classmethod
    def of(cls, message: Any) -> AmiMessage:
        values: dict[str, tuple[str, ...]] = {}
        for key, value in message.items():
            items = tuple(str(v) for v in value) if isinstance(value, list) else (str(value),)
            values[str(key).lower()] = values.get(str(key).lower(), ()) + items
        return cls(values)

    def get(self, name: str, default: str = "") -> str:
        """The header's (first) value."""
        items = self.values.get(name.lower())
        return items[0] if items else default

    def all(self, name: str) -> tuple[str, ...]:
        return self.values.get(name.lower(), ())

    @property
    def event(self) -> str:
        return self.get("event")

    @property
    def action_id(self) -> str:
        return self.get("actionid")

    @property
    def message(self) -> str:
        return self.get("message")

    @property
    def success(self) -> bool:
        """A response that says yes (`Success`, `Follows`, `Goodbye`), or any event."""
        return bool(self.event) or self.get("response") in ("Success", "Follows", "Goodbye")


@dataclass(frozen=True)
class ConnectionLost:
    """Put in every event stream when the connection drops: events may have been missed."""

    reason: str


class EventStream:
    """The connection's events from the moment it is opened (those `accept` takes, or all), and a
    `ConnectionLost` each time the connection drops. Unbounded: a stream lives for one call and is
    read all along, and `accept` keeps a busy Asterisk's other calls out of it."""

    def __init__(self, accept: Callable[[AmiMessage], bool] | None = None) -> None:
        self._queue: asyncio.Queue[AmiMessage | ConnectionLost] = asyncio.Queue()
        self.accept = accept or (lambda _event: True)

    def put(self, item: AmiMessage | ConnectionLost) -> None:
        self._queue.put_nowait(item)

    async def next(self, timeout: float | None) -> AmiMessage | ConnectionLost | None:
        """The next item, or None when `timeout` seconds pass first."""
        if timeout is not None and timeout <= 0:
            return self._queue.get_nowait() if not self._queue.empty() else None
        try:
            async with asyncio.timeout(timeout):  # not wait_for: on 3.11 it can swallow a cancel (gh-86296)
                return await self._queue.get()
        except TimeoutError:
            return None

    def pending(self) -> list[AmiMessage | ConnectionLost]:
        """What is queued now, taken out of the stream."""
        items = []
        while not self._queue.empty():
            items.append(self._queue.get_nowait())
        return items


class _Action(Action):  # type: ignore[misc]
    """panoramisk's `Action`, with the two answers it misreads read right (defects 3 and 6)."""

    @property
    def name(self) -> str:
        return str(self.get("action", "")).lower()

    @property
    def multi(self) -> bool:
        if self.name == "originate":
            # Its answer is the `Response`; the `OriginateResponse` is an event (defect 3).
            return False
        first = self.responses[0]
        if "async" not in self and str(first.message).lower().endswith("successfully queued"):
            # panoramisk reads self['async'] here: KeyError('async') for PlayDTMF (defect 6).
            return bool(self.as_list)
        return bool(super().multi)


class _Protocol(AMIProtocol):  # type: ignore[misc]
    """panoramisk's protocol, telling its owner when it is lost and never keeping actions to send
    again (defects 3 and 4)."""

    closed: bool

    def __init__(self, manager: Any, on_lost: Callable[[_Protocol, str], None]) -> None:
        super().__init__()
        self._manager, self._on_lost = manager, on_lost

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # What Manager.connection_made sets, set before any data can arrive.
        super().connection_made(transport)
        self.factory = self._manager
        self.log = self._manager.log
        self.config = self._manager.config
        self.encoding = self._manager.config["encoding"]

    def handle_message(self, message: Any) -> None:
        if str(message.get("event", "")).lower() == "originateresponse":
            self.factory.dispatch(message)  # to event handlers, never to the Originate's future
            return
        super().handle_message(message)

    def connection_lost(self, exc: Exception | None) -> None:
        self.close()
        self._on_lost(self, f"connection closed ({exc})" if exc else "connection closed")

    def close(self, abort: bool = False) -> None:
        """Fail every action in flight (panoramisk would queue them to send again), then close."""
        for key in list(self.responses):
            action = self.responses.pop(key)
            if not action.future.done():
                action.future.set_exception(
                    AmiError(f"the Manager connection was lost before Asterisk answered {action.name}")
                )
        if not self.closed:
            self.closed = True
            if abort:
                self.transport.abort()
            else:
                self.transport.close()

    def forget(self, action: _Action) -> None:
        self.responses.pop(action.id, None)
        self.responses.pop(action.action_id, None)

    @property
    def open(self) -> bool:
        return not self.closed and not self.transport.is_closing()


class _QuietLog:
    """The logger panoramisk is given: its lines, with the secret hidden (it logs actions whole
    in places, a Login among them)."""

    def __init__(self, logger: logging.Logger, secret: str) -> None:
        self._logger, self._secret = logger, secret

    def _text(self, msg: object, args: tuple[object, ...]) -> str:
        try:
            text = str(msg) % args if args else str(msg)
        except (TypeError, ValueError):
            text = f"{msg} {args}"
        return text.replace(self._secret, "[REDACTED]") if self._secret else text

    def debug(self, msg: object, *args: object) -> None:
        if self._logger.isEnabledFor(logging.DEBUG):
            self._logger.debug("%s", self._text(msg, args))

    def info(self, msg: object, *args: object) -> None:
        self._logger.info("%s", self._text(msg, args))

    def warning(self, msg: object, *args: object) -> None:
        self._logger.warning("%s", self._text(msg, args))

    def error(self, msg: object, *args: object) -> None:
        self._logger.error("%s", self._text(msg, args))

    def exception(self, msg: object, *args: object) -> None:
        # Not the traceback: its frames' text could hold the action, secret included.
        self._logger.error("%s", self._text(msg, args))


class _LoginRefused(Exception):
    """Asterisk answered the login with an error (wrong username or secret)."""


@dataclass
class _Link:
    """One open, logged-in connection."""

    protocol: _Protocol
    lost: asyncio.Event = field(default_factory=asyncio.Event)


class AmiConnection:
    """One Manager session that stays up: logged in, watched, reconnected, never re-sending."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str,
        secret: str,
        action_timeout: float = 5.0,
        ping_interval: float = 10.0,
        reconnect_min: float = 0.5,
        reconnect_max: float = 30.0,
    ) -> None:
        self.host, self.port, self.username = host, port, username
        self._secret = secret
        self.action_timeout = action_timeout
        self.ping_interval = ping_interval
        self._reconnect = (reconnect_min, reconnect_max)
        self._plog = _QuietLog(logging.getLogger("ivr.outbound.ami.panoramisk"), secret)
        # panoramisk's Manager, for event patterns and dispatch; its connect() is never called.
        self._manager = Manager(host=host, port=port, username=username, secret=secret, log=self._plog)
        self._manager.register_event("*", self._dispatch)
        self._link: _Link | None = None
        self._up = asyncio.Event()
        self._streams: set[EventStream] = set()
        self._runner: asyncio.Task[None] | None = None
        self.connections = 0
        """How many times a login succeeded: a test reads reconnections here."""

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def started(self) -> bool:
        return self._runner is not None

    @property
    def connected(self) -> bool:
        return self._link is not None and self._link.protocol.open

    async def start(self) -> None:
        """Connect and log in once, then keep the connection up in the background.

        A refused login is a `SettingsError` (the operator must fix a setting); a host that cannot
        be reached now is only a warning: the connection keeps trying.
        """
        if self._runner is not None:
            return
        try:
            await self._open()
        except _LoginRefused as exc:
            raise self._refused(exc) from None
        except (OSError, TimeoutError, AmiError) as exc:
            log.warning("ami_unreachable", where=self.where, error=str(exc) or type(exc).__name__)
        self._runner = asyncio.create_task(self._keep_up(), name=f"ami {self.where}")

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            with suppress(asyncio.CancelledError):
                await runner
        if self._link is not None:
            self._drop(self._link, "closed", abort=False)

    async def wait_connected(self, timeout: float) -> bool:
        """True once logged in, False when `timeout` seconds pass first."""
        if self.connected:
            return True
        try:
            async with asyncio.timeout(timeout):
                await self._up.wait()
        except TimeoutError:
            return False
        return self.connected

    @contextmanager
    def events(self, accept: Callable[[AmiMessage], bool] | None = None) -> Iterator[EventStream]:
        """The events from now on that `accept` takes (all by default), and each connection
        loss, until the block ends."""
        stream = EventStream(accept)
        self._streams.add(stream)
        try:
            yield stream
        finally:
            self._streams.discard(stream)

    async def send(self, headers: Headers, *, timeout: float | None = None) -> AmiMessage:
        """Send one action and return its answer (the first message of a list).

        `PlatformUnavailableError` when not connected: nothing was sent. `AmiError` when sent
        but not answered within the deadline, or when the connection was lost first: the action
        is then forgotten, never sent again.
        """
        answer = await self._request(headers, timeout)
        return answer[0]

    async def send_list(self, headers: Headers, *, timeout: float | None = None) -> list[AmiMessage]:
        """Send an action answered by a list of events (`CoreShowChannels`): all of them."""
        return await self._request(headers, timeout)

    async def _request(self, headers: Headers, timeout: float | None) -> list[AmiMessage]:
        link = self._link
        if link is None or not link.protocol.open:
            raise PlatformUnavailableError(f"the Asterisk Manager at {self.where} is not connected")
        return await self._exchange(link, headers, timeout)

    async def _exchange(self, link: _Link, headers: Headers, timeout: float | None) -> list[AmiMessage]:
        action = _Action({k: list(v) if not isinstance(v, str) else v for k, v in headers.items()})
        if action.name == "originate":
            action["Async"] = "true"  # defect 2: never an Originate that holds the session
        protocol = link.protocol
        future = protocol.send(action, as_list=None)
        limit = self.action_timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                result = await future
        except TimeoutError:
            protocol.forget(action)
            raise AmiError(
                f"Asterisk did not answer {headers.get('Action')} within {limit:g} s ({self.where})"
            ) from None
        messages = result if isinstance(result, list) else [result]
        return [AmiMessage.of(message) for message in messages]

    async def _open(self) -> None:
        """Connect and log in; awaits the login's answer (defect 1)."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.action_timeout):
            _transport, protocol = await loop.create_connection(
                lambda: _Protocol(self._manager, self._lost), self.host, self.port)
        assert isinstance(protocol, _Protocol)
        self._manager.protocol = protocol
        link = _Link(protocol)
        try:
            answer = await self._exchange(
                link,
                {"Action": "Login", "Username": self.username, "Secret": self._secret, "Events": EVENTS},
                None,
            )
        except BaseException:
            protocol.close(abort=True)
            raise
        if not answer[0].success:
            protocol.close()
            raise _LoginRefused(answer[0].message or "login refused")
        if not protocol.open:
            raise AmiError(f"the Manager connection to {self.where} closed during the login")
        self._link = link
        self.connections += 1
        self._up.set()
        log.info("ami_connected", where=self.where, username=self.username, version=protocol.version)

    def _refused(self, exc: _LoginRefused) -> SettingsError:
        return SettingsError(
            f"IVR_AMI_SECRET: Asterisk refused the login of user {self.username!r} at {self.where} ({exc}); "
            "check IVR_AMI_USERNAME and IVR_AMI_SECRET"
        )

    async def _keep_up(self) -> None:
        """Reconnect with backoff while down; watch the connection while up."""
        delay = self._reconnect[0]
        while True:
            link = self._link
            if link is not None:
                await self._watch(link)
                delay = self._reconnect[0]
                await asyncio.sleep(delay)  # a restarting Asterisk is not hammered
                continue
            try:
                await self._open()
                continue
            except _LoginRefused as exc:
                log.error("ami_login_refused", where=self.where, username=self.username, error=str(exc))
            except (OSError, TimeoutError, AmiError) as exc:
                log.warning("ami_reconnect_failed", where=self.where, error=str(exc) or type(exc).__name__,
                            retry_in=delay)
            except Exception as exc:  # noqa: BLE001 - the connection must keep trying whatever broke
                log.error("ami_reconnect_error", where=self.where, error=type(exc).__name__, retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._reconnect[1])

    async def _watch(self, link: _Link) -> None:
        """Ping every `ping_interval`; a Ping unanswered in time drops the connection (defect 5)."""
        while not link.lost.is_set():
            try:
                async with asyncio.timeout(self.ping_interval):
                    await link.lost.wait()
                return
            except TimeoutError:
                pass
            try:
                await self._exchange(link, {"Action": "Ping"}, self.action_timeout)
            except AmiError as exc:
                if not link.lost.is_set():
                    log.warning("ami_silent", where=self.where, error=str(exc))
                    self._drop(link, "no answer to Ping: the connection is silent", abort=True)
                return

    def _lost(self, protocol: _Protocol, reason: str) -> None:
        if self._link is not None and self._link.protocol is protocol:
            self._drop(self._link, reason, abort=False)

    def _drop(self, link: _Link, reason: str, *, abort: bool) -> None:
        if link.lost.is_set():
            return
        link.lost.set()
        if self._link is link:
            self._link = None
            self._up.clear()
        link.protocol.close(abort=abort)
        if reason != "closed":
            log.warning("ami_connection_lost", where=self.where, reason=reason)
        for stream in list(self._streams):
            stream.put(ConnectionLost(reason))

    def _dispatch(self, _manager: Any, event: Message) -> None:
        message = AmiMessage.of(event)
        for stream in list(self._streams):
            if stream.accept(message):
                stream.put(message)
