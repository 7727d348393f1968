"""The simulated Asterisk's AMI mode: a TCP Asterisk Manager on loopback that places calls.

`SimulatedAmi` speaks the manager wire as Asterisk 22's main/manager.c does (see `_ami_wire`)
so that the service's AMI platform can place outbound calls with no PBX, in tests and on a
newcomer's machine. It answers Login, Logoff, Ping, Originate, CoreShowChannels and Hangup;
what an Originate does on the line is `_ami_calls`: answered ``notice`` calls run the
``announce`` route over FastAGI against the service (`agi_address`).

As in Asterisk, events go to every logged-in connection that wants them (Login ``Events: off``
wants none), a call goes on when the connection that placed it drops, and events sent while no
one is connected are lost. Fault knobs a test may flip at any time: `refuse_login`,
`drop_on_originate` (the next N Originates start their call, then the connection closes before
the Response), `silent` (every connection open then, and any opened while it is set, goes quiet
for good: nothing is answered or sent, what arrives is dropped, as a half-open peer), and
`answer_delay` (extra ringing before an answer; past the Originate's Timeout it is no answer).
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from pathlib import Path

from ivr.catalog import PromptCatalog, default_prompts_dir
from ivr.logging import get_logger
from ivr.sim._ami_calls import ANNOUNCE_CONTEXT, BRIDGE_CONTEXT, AmiOriginate, _Pbx
from ivr.sim._ami_wire import (
    BANNER,
    MAX_MESSAGE_BYTES,
    AmiMessage,
    Headers,
    MessageTooLarge,
    ast_false,
    ast_true,
    encode,
    event,
    parse_caller_id,
    parse_variables,
    read_message,
    response,
    timestamp,
)
from ivr.sim._sounds import SoundLibrary

__all__ = ["SimulatedAmi", "serve_simulated_ami"]

log = get_logger("ivr.sim")

# Our bound on open connections. Asterisk bounds those not logged in yet (`authlimit`, default 50)
# and closes one past it before the banner (manager.c session_do); the simulator does the same.
MAX_CONNECTIONS = 64
AUTH_TIMEOUT = 30.0  # manager.conf `authtimeout` default (manager.c: authtimeout = 30)
_MAX_UNIQUEID = 149  # include/asterisk/channel.h AST_MAX_PUBLIC_UNIQUEID
_WRITE_BACKLOG = 1024 * 1024  # a peer that reads nothing is cut off (Asterisk: `writetimeout`)
_DIALPLAN = {(ANNOUNCE_CONTEXT, "s"), (BRIDGE_CONTEXT, "s")}  # extensions that exist
# manager.c process_message: allowed before Login (Challenge, MD5 login, is not simulated: unknown)
_PRE_LOGIN = {"login", "logoff", "challenge"}


class _Session:
    """One manager connection."""

    def __init__(self, writer: asyncio.StreamWriter, silent: Callable[[], bool]) -> None:
        self.writer = writer
        self.authenticated = False
        self.events = True
        self.muted = False
        self.closed = False
        self._silent = silent

    def check_silent(self) -> bool:
        """Whether this connection has gone quiet; once it has, for good."""
        self.muted = self.muted or self._silent()
        return self.muted

    def send(self, headers: Headers) -> None:
        self.write(encode(headers))

    def write(self, data: bytes) -> None:
        if self.check_silent() or self.closed:
            return
        self.writer.write(data)
        if self.writer.transport.get_write_buffer_size() > _WRITE_BACKLOG:
            self.writer.transport.abort()
            self.closed = True

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.writer.close()


_Action = Callable[["SimulatedAmi", _Session, AmiMessage], Awaitable[None]]


class SimulatedAmi(_Pbx):
    """An Asterisk Manager on ``host:port`` (port 0: any free one; `port` once started).

    `username`/`secret`: the one manager user. `agi_address` (``host:port``): the service's
    FastAGI listener, where answered calls into ``keybox-announce`` run the ``announce`` route
    (None: AGI fails and the channel hangs up). `sounds`/`catalog`: what the callee can hear and
    how transcripts render (default: the shipped prompts, no TTS cache). `ring_seconds`: how long
    a callee rings before the outcome; `bridge_seconds`: how long bridged legs talk. `heard_dir`:
    where each answered notice leaves ``<IVR_JOB_ID>.txt``, its transcript with codes masked.
    Logs: `originates` (every Originate received), `calls` (each announce call's `CallResult`),
    `channels` (the channels up now, by Uniqueid).
    """

    def __init__(
        self, *, username: str = "keybox", secret: str = "sim-secret", agi_address: str | None = None,
        sounds: SoundLibrary | None = None, catalog: PromptCatalog | None = None, ring_seconds: float = 0.05,
        bridge_seconds: float = 0.05, heard_dir: Path | None = None, host: str = "127.0.0.1", port: int = 0,
        max_connections: int = MAX_CONNECTIONS, auth_timeout: float = AUTH_TIMEOUT,
    ) -> None:
        catalog = catalog or PromptCatalog.load(default_prompts_dir())
        super().__init__(agi_address=agi_address, sounds=sounds or SoundLibrary(catalog), catalog=catalog,
                         ring_seconds=ring_seconds, bridge_seconds=bridge_seconds, heard_dir=heard_dir)
        self.username = username
        self._secret = secret
        self.host = host
        self.max_connections = max_connections
        self.auth_timeout = auth_timeout
        self.refuse_login = False
        self.drop_on_originate = 0
        self.silent = False
        self._port = port
        self._server: asyncio.Server | None = None
        self._sessions: set[_Session] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:  # never the secret
        return f"SimulatedAmi({self.host}:{self._port}, user={self.username!r})"

    @property
    def port(self) -> int:
        return self._port

    @property
    def connections(self) -> int:
        """Manager connections open now (logged in or not)."""
        return len(self._sessions)

    async def start(self) -> int:
        """Listen; return the port."""
        self._server = await asyncio.start_server(self._accept, self.host, self._port, limit=MAX_MESSAGE_BYTES)
        self._port = self._server.sockets[0].getsockname()[1]
        log.info("ami_sim.listening", host=self.host, port=self._port, agi_address=self.agi_address)
        return self._port

    async def stop(self) -> None:
        """Stop listening, close every connection and end every call (without events)."""
        if self._server is not None:
            self._server.close()
        for session in list(self._sessions):
            session.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._stop_calls()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> SimulatedAmi:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _broadcast(self, headers: Headers) -> None:
        data = encode(headers)
        for session in list(self._sessions):
            if session.authenticated and session.events:
                session.write(data)

    # -- connections ---------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            pass  # stopped: asyncio's stream callback would report a cancelled handler as an error
        finally:
            self._handlers.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._sessions) >= self.max_connections:
            log.warning("ami_sim.too_many_connections", limit=self.max_connections)
            writer.close()
            return
        session = _Session(writer, lambda: self.silent)
        self._sessions.add(session)
        try:
            session.write(BANNER)
            while not session.closed:
                try:
                    quiet = session.authenticated or session.check_silent()
                    async with asyncio.timeout(None if quiet else self.auth_timeout):
                        message = await read_message(reader)
                except TimeoutError:  # manager.c do_message: no login within authtimeout
                    break
                except MessageTooLarge as error:
                    log.warning("ami_sim.message_too_large", detail=str(error))
                    break
                if message is None:
                    break
                if not session.check_silent():  # a half-open peer: what arrives is lost
                    await self._act(session, message)
        except ConnectionError:
            pass
        finally:
            self._sessions.discard(session)
            session.close()

    async def _act(self, session: _Session, message: AmiMessage) -> None:
        """manager.c `process_message`."""
        action = message.get("Action").strip()
        if not action:
            session.send(response(message, "Error", "Missing action in request"))
            return
        if not session.authenticated and action.lower() not in _PRE_LOGIN:
            session.send(response(message, "Error", "Permission denied"))
            return
        handler = _ACTIONS.get(action.lower())
        if handler is None:
            session.send(response(message, "Error", f"Invalid/unknown command: {action}. "
                                  "Use Action: ListCommands to show available commands."))
            return
        await handler(self, session, message)

    # -- actions -------------------------------------------------------------------------------

    async def _login(self, session: _Session, message: AmiMessage) -> None:
        """manager.c `action_login` / `authenticate` (user names match in any case, secrets exactly)."""
        if session.authenticated:
            session.send(response(message, "Success", "Already authenticated"))
            return
        username = message.get("Username")
        accepted = (not self.refuse_login and username.lower() == self.username.lower()
                    and hmac.compare_digest(message.get("Secret").encode(), self._secret.encode()))
        if not accepted:
            # Asterisk sleeps 1 s first, then answers and drops the connection; no sleep here.
            log.warning("ami_sim.login_refused", username=username)
            session.send(response(message, "Error", "Authentication failed"))
            session.close()
            return
        session.authenticated = True
        events = message.get("Events")
        session.events = not ast_false(events)  # manager.c strings_to_mask: absent keeps them on
        session.send(response(message, "Success", "Authentication accepted"))
        if session.events:
            session.send(event("FullyBooted", "system,all", [
                ("Uptime", "0"), ("LastReload", "0"), ("Status", "Fully Booted")]))

    async def _logoff(self, session: _Session, message: AmiMessage) -> None:
        session.send(response(message, "Goodbye", "Thanks for all the fish."))  # manager.c action_logoff
        session.close()

    async def _ping(self, session: _Session, message: AmiMessage) -> None:
        session.send(response(message, "Success", Ping="Pong", Timestamp=timestamp()))  # manager.c action_ping

    async def _originate(self, session: _Session, message: AmiMessage) -> None:
        """manager.c `action_originate`: checks, then Async queues; otherwise it answers after the outcome."""
        channel, channel_id = message.get("Channel"), message.get("ChannelId")
        priority, timeout = message.get("Priority"), message.get("Timeout")
        context, exten = message.get("Context"), message.get("Exten")
        error = None
        if len(channel_id) > _MAX_UNIQUEID:
            error = f"Uniqueid length exceeds maximum of {_MAX_UNIQUEID}"
        elif not channel:
            error = "Channel not specified"
        elif priority and not _is_int(priority):
            error = "Invalid priority"  # not a number, and the dialplan here has no labels
        elif timeout and not _is_int(timeout):
            error = "Invalid timeout"
        elif "/" not in channel:
            error = "Invalid channel"
        elif priority and (context, exten) not in _DIALPLAN:
            error = "Extension does not exist."
        if error is not None:
            session.send(response(message, "Error", error))
            return
        is_async = ast_true(message.get("Async"))
        originate = AmiOriginate(
            action_id=message.get("ActionID"), channel=channel, context=context, exten=exten,
            variables=parse_variables(message.all("Variable")), channel_id=channel_id,
            uniqueid=channel_id or self.new_uniqueid(), outcome=self.outcome_for(channel), is_async=is_async,
            caller_id=parse_caller_id(message.get("CallerID")),
            timeout=int(timeout) / 1000 if timeout else 30.0,  # milliseconds, default 30000
        )
        log.info("ami_sim.originate", action_id=originate.action_id, channel=channel, context=context,
                 uniqueid=originate.uniqueid, outcome=originate.outcome, is_async=is_async)
        if self.drop_on_originate > 0:
            self.drop_on_originate -= 1
            self.place(originate)
            log.info("ami_sim.dropped_connection", action_id=originate.action_id)
            session.close()
            return
        if is_async:
            self.place(originate)
            session.send(response(message, "Success", "Originate successfully queued"))
            return
        answered: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        def reply(ok: bool) -> None:
            if not answered.done():
                answered.set_result(ok)

        self.place(originate, reply)
        if await answered:
            session.send(response(message, "Success", "Originate successfully queued"))
        else:
            session.send(response(message, "Error", "Originate failed"))

    async def _core_show_channels(self, session: _Session, message: AmiMessage) -> None:
        """manager.c `action_coreshowchannels`: a list ack, one CoreShowChannel each, the complete event."""
        session.send(response(message, "Success", "Channels will follow", EventList="start"))
        action_id = [("ActionID", message.get("ActionID"))] if message.get("ActionID") else []
        channels = list(self.channels.values())
        for channel in channels:
            session.send([("Event", "CoreShowChannel"), *action_id, *channel.headers(),
                          ("Application", channel.application), ("ApplicationData", channel.data),
                          ("Duration", channel.duration()), ("BridgeId", channel.bridge_id)])
        session.send([("Event", "CoreShowChannelsComplete"), *action_id, ("EventList", "Complete"),
                      ("ListItems", str(len(channels)))])

    async def _hangup(self, session: _Session, message: AmiMessage) -> None:
        """manager.c `ast_manager_hangup_helper`, by name or Uniqueid (no regular expressions)."""
        target = message.get("Channel")
        if not target:
            session.send(response(message, "Error", "No channel specified"))
            return
        channel = self.find_channel(target)
        if channel is None:
            session.send(response(message, "Error", "No such channel"))
            return
        cause = message.get("Cause")
        channel.request_hangup(int(cause) if _is_int(cause) and 0 < int(cause) <= 127 else 16)
        session.send(response(message, "Success", "Channel Hungup"))


_ACTIONS: dict[str, _Action] = {
    "login": SimulatedAmi._login,
    "logoff": SimulatedAmi._logoff,
    "ping": SimulatedAmi._ping,
    "originate": SimulatedAmi._originate,
    "coreshowchannels": SimulatedAmi._core_show_channels,
    "hangup": SimulatedAmi._hangup,
}


def _is_int(text: str) -> bool:
    try:
        int(text.strip())
    except ValueError:
        return False
    return True


async def serve_simulated_ami(
    host: str = "127.0.0.1", port: int = 5038, *, agi_address: str | None = None, username: str = "keybox",
    secret: str = "sim-secret", heard_dir: Path | None = None, sounds: SoundLibrary | None = None,
    ring_seconds: float = 1.0,
) -> None:
    """Run a simulated Asterisk Manager on `host:port` until cancelled (``ivr asterisk-sim``)."""
    async with SimulatedAmi(username=username, secret=secret, agi_address=agi_address, sounds=sounds,
                            heard_dir=heard_dir, host=host, port=port, ring_seconds=ring_seconds):
        await asyncio.Event().wait()
