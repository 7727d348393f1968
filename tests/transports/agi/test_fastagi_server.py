"""`FastAgiServer` on a real loopback port, with raw asyncio clients playing Asterisk."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from ivr.errors import ChannelHangupError
from ivr.logging import get_logger
from ivr.netallow import parse_networks
from ivr.transports.agi import AgiCall, FastAgiServer

if TYPE_CHECKING:
    from conftest import CapturedLog

PATIENCE = 2.0


@dataclass
class Seen:
    """What a handler saw of one call."""

    route: str
    variables: dict[str, str]
    call_id: str
    caller_id: str
    outcome: str = "running"
    digits: str = ""
    env: dict[str, str] = field(default_factory=dict)


class Handlers:
    """Handlers that record what they saw, keyed by call id."""

    def __init__(self) -> None:
        self.seen: dict[str, Seen] = {}

    def _start(self, call: AgiCall) -> Seen:
        seen = Seen(call.route, call.variables, call.call_id, call.caller_id, env=dict(call.environment.values))
        self.seen[call.call_id] = seen
        return seen

    async def pin(self, call: AgiCall) -> None:
        """Welcome, a PIN, goodbye: what a short flow does, catching a hang-up as the flow does."""
        seen = self._start(call)
        log = get_logger("test.flow")
        try:
            log.info("test.welcome")
            await call.play("keybox/welcome")
            entry = await call.read_digits("keybox/enter-pin", 6000, 4)
            seen.digits = entry.digits
            log.info("test.pin_read", length=len(entry.digits))
            await call.hangup()
            seen.outcome = "done"
        except ChannelHangupError:
            seen.outcome = "caller_hangup"
        except asyncio.CancelledError:
            seen.outcome = "cancelled"
            raise

    async def leave_open(self, call: AgiCall) -> None:
        seen = self._start(call)
        await call.play("keybox/goodbye")
        seen.outcome = "done"

    async def transfer(self, call: AgiCall) -> None:
        seen = self._start(call)
        await call.transfer("Queue(keybox-agents)")
        seen.outcome = "transferred"

    async def crash(self, call: AgiCall) -> None:
        self._start(call)
        raise RuntimeError("the flow has a bug")


@dataclass
class Peer:
    """Asterisk's end of one FastAGI connection."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    @classmethod
    async def connect(cls, port: int) -> Peer:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    @classmethod
    async def call(cls, port: int, script: str = "keybox", unique_id: str = "1717000000.1", **extra: str) -> Peer:
        peer = await cls.connect(port)
        await peer.send_env(environment(script, unique_id, **extra))
        return peer

    async def send_env(self, lines: Iterable[bytes]) -> None:
        self.writer.write(b"".join(line + b"\n" for line in lines) + b"\n")
        await self.writer.drain()

    async def send(self, *lines: str) -> None:
        self.writer.write("".join(line + "\n" for line in lines).encode())
        await self.writer.drain()

    async def expect(self, command: str, *replies: str) -> None:
        line = await asyncio.wait_for(self.reader.readline(), PATIENCE)
        assert line == command.encode() + b"\n"
        await self.send(*replies)

    async def assert_closed_by_server(self) -> None:
        """The server wrote nothing more and closed its end."""
        assert await asyncio.wait_for(self.reader.read(), PATIENCE) == b""
        self.writer.close()

    def reset(self) -> None:
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    async def pin_call(self, pin: str = "0123") -> None:
        await self.expect('STREAM FILE keybox/welcome ""', "200 result=0 endpos=8000")
        await self.expect("GET DATA keybox/enter-pin 6000 4", f"200 result={pin}")
        await self.expect("HANGUP", "200 result=1")
        await self.assert_closed_by_server()


def environment(script: str, unique_id: str, **extra: str) -> list[bytes]:
    values = {
        "agi_network": "yes",
        "agi_network_script": script,
        "agi_request": f"agi://127.0.0.1/{script}",
        "agi_channel": "PJSIP/trunk-00000001",
        "agi_language": "en",
        "agi_uniqueid": unique_id,
        "agi_callerid": "5145550123",
        **extra,
    }
    return [f"{key}: {value}".encode() for key, value in values.items()]


@asynccontextmanager
async def serving(handler: Callable[[AgiCall], Any], **options: Any) -> AsyncIterator[FastAgiServer]:
    server = FastAgiServer(handler, "127.0.0.1", 0, **options)
    await server.start()
    try:
        yield server
    finally:
        await server.drain(0)


async def until(condition: Callable[[], bool]) -> None:
    """Wait for `condition`, yielding to the loop; a broken test fails after PATIENCE."""
    async with asyncio.timeout(PATIENCE):
        while not condition():
            await asyncio.sleep(0.001)


@pytest.fixture
def handlers() -> Handlers:
    return Handlers()


# -- routing and the environment ----------------------------------------------------------


async def test_a_call_is_routed_by_its_script_with_the_query(handlers: Handlers) -> None:
    async with serving(handlers.pin) as server:
        assert server.port > 0
        peer = await Peer.call(server.port, "keybox?lang=fr&src=web", unique_id="1.1")
        await peer.pin_call("0042")
        other = await Peer.call(server.port, "/identify", unique_id="1.2")
        await other.pin_call()

    keybox, identify = handlers.seen["1.1"], handlers.seen["1.2"]
    assert (keybox.route, keybox.variables) == ("keybox", {"lang": "fr", "src": "web"})
    assert (keybox.outcome, keybox.digits) == ("done", "0042")
    assert (identify.route, identify.variables, identify.outcome) == ("identify", {}, "done")


async def test_an_unknown_route_is_the_handlers_business(handlers: Handlers) -> None:
    async with serving(handlers.pin) as server:
        peer = await Peer.call(server.port, "no-such-route", unique_id="1.3")
        await peer.pin_call()

    assert handlers.seen["1.3"].route == "no-such-route"


async def test_env_values_with_colons_and_bytes_that_are_not_utf8(handlers: Handlers) -> None:
    async with serving(handlers.pin) as server:
        peer = await Peer.connect(server.port)
        env = environment("keybox", "1.4", agi_channel="SIP/host:5060-0001")
        await peer.send_env([*env, b"agi_calleridname: Ren\xe9: the boss", b"agi_dnid: 5551234"])
        await peer.pin_call()

    seen = handlers.seen["1.4"]
    assert seen.env["agi_channel"] == "SIP/host:5060-0001"
    assert seen.env["agi_calleridname"] == "Ren\ufffd: the boss"
    assert seen.caller_id == "5145550123"


# -- peers that misbehave -----------------------------------------------------------------


@pytest.mark.parametrize(
    "misbehave",
    [
        pytest.param(lambda peer: peer.writer.close(), id="closes-before-the-blank-line"),
        pytest.param(lambda peer: peer.writer.write_eof(), id="half-closes-before-the-blank-line"),
        pytest.param(lambda peer: peer.writer.write(b"x" * 20_000), id="sends-an-endless-line"),
        pytest.param(lambda peer: peer.reset(), id="resets-before-the-blank-line"),
    ],
)
async def test_a_peer_without_an_environment_is_dropped_and_others_are_served(
    handlers: Handlers, captured_log: CapturedLog, misbehave: Callable[[Peer], None]
) -> None:
    # The environment timeout is far beyond PATIENCE: nothing here may wait for it.
    dropped: list[str] = []
    async with serving(handlers.pin, env_timeout=60) as server:
        server.on_dropped.append(dropped.append)
        bad = await Peer.connect(server.port)
        bad.writer.write(b"agi_network: yes\nagi_network_script: keybox\n")
        await bad.writer.drain()
        misbehave(bad)
        if not bad.writer.transport.is_closing():
            await bad.assert_closed_by_server()
        await until(lambda: server.active == 0)  # the connection's task ended: nothing left to spin

        good = await Peer.call(server.port, unique_id="2.1")
        await good.pin_call()

    assert not handlers.seen.keys() - {"2.1"}
    assert handlers.seen["2.1"].outcome == "done"
    [event] = captured_log.events("agi.bad_environment")
    assert event["level"] == "warning"
    assert dropped == ["no_environment"]


async def test_a_peer_resetting_mid_command_is_a_hang_up(handlers: Handlers, captured_log: CapturedLog) -> None:
    async with serving(handlers.pin) as server:
        peer = await Peer.call(server.port, unique_id="2.2")
        assert await asyncio.wait_for(peer.reader.readline(), PATIENCE) == b'STREAM FILE keybox/welcome ""\n'
        peer.reset()
        await until(lambda: server.active == 0)

        await (await Peer.call(server.port, unique_id="2.3")).pin_call()

    assert handlers.seen["2.2"].outcome == "caller_hangup"
    assert handlers.seen["2.3"].outcome == "done"
    assert not captured_log.events("agi.handler_failed")


# -- the socket is closed as soon as the handler is done ------------------------------------


async def test_the_socket_is_closed_right_after_a_hang_up(handlers: Handlers) -> None:
    async with serving(handlers.pin) as server:
        peer = await Peer.call(server.port, unique_id="3.1")
        await peer.expect('STREAM FILE keybox/welcome ""', "HANGUP", "200 result=-1 endpos=0")
        # Asterisk would keep its end open after a hang-up; the server must close, sending nothing.
        await peer.assert_closed_by_server()

    assert handlers.seen["3.1"].outcome == "caller_hangup"


async def test_a_call_the_handler_left_open_is_hung_up_then_closed(handlers: Handlers) -> None:
    async with serving(handlers.leave_open) as server:
        peer = await Peer.call(server.port)
        await peer.expect('STREAM FILE keybox/goodbye ""', "200 result=0 endpos=10")
        await peer.expect("HANGUP", "200 result=1")
        await peer.assert_closed_by_server()


async def test_a_transferred_call_is_closed_without_a_hang_up(handlers: Handlers) -> None:
    async with serving(handlers.transfer) as server:
        peer = await Peer.call(server.port)
        await peer.expect("SET VARIABLE IVR_TRANSFER Queue(keybox-agents)", "200 result=1")
        await peer.assert_closed_by_server()


async def test_a_handler_exception_is_logged_with_its_traceback(handlers: Handlers, captured_log: CapturedLog) -> None:
    async with serving(handlers.crash) as server:
        peer = await Peer.call(server.port, unique_id="3.2")
        await peer.expect("HANGUP", "200 result=1")
        await peer.assert_closed_by_server()
        await (await Peer.call(server.port, unique_id="3.3")).expect("HANGUP", "200 result=1")

    [event, _] = captured_log.events("agi.handler_failed")
    assert event["call_id"] == "3.2" and event["level"] == "error"
    assert "RuntimeError: the flow has a bug" in event["exception"]
    assert "Traceback" in event["exception"]


# -- draining -----------------------------------------------------------------------------


async def test_drain_lets_a_call_finish_and_refuses_new_connections(handlers: Handlers) -> None:
    async with serving(handlers.pin) as server:
        peer = await Peer.call(server.port, unique_id="4.1")
        await peer.expect('STREAM FILE keybox/welcome ""', "200 result=0 endpos=8000")
        assert server.active == 1

        drain = asyncio.create_task(server.drain(PATIENCE * 2))
        await until(lambda: not server.serving)
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", server.port)
        assert not drain.done()

        await peer.expect("GET DATA keybox/enter-pin 6000 4", "200 result=1234")
        await peer.expect("HANGUP", "200 result=1")
        await peer.assert_closed_by_server()
        await asyncio.wait_for(drain, PATIENCE)

    assert handlers.seen["4.1"].outcome == "done"
    assert server.active == 0


async def test_drain_cancels_a_call_that_outlives_the_grace(handlers: Handlers, captured_log: CapturedLog) -> None:
    async with serving(handlers.pin) as server:
        peer = await Peer.call(server.port, unique_id="4.2")
        assert await asyncio.wait_for(peer.reader.readline(), PATIENCE) == b'STREAM FILE keybox/welcome ""\n'
        # Asterisk never answers: the prompt "plays" for ever.

        await asyncio.wait_for(server.drain(0.05), PATIENCE)

        assert server.active == 0
        await peer.assert_closed_by_server()  # cancelled mid-command: nothing more is sent

    assert handlers.seen["4.2"].outcome == "cancelled"
    [event] = captured_log.events("agi.call_cancelled")
    assert event["call_id"] == "4.2"


# -- logs and load ------------------------------------------------------------------------


async def test_every_log_line_of_a_call_carries_its_call_id(handlers: Handlers, captured_log: CapturedLog) -> None:
    async with serving(handlers.pin) as server:
        first = await Peer.call(server.port, unique_id="5.1")
        second = await Peer.call(server.port, unique_id="5.2")
        await first.expect('STREAM FILE keybox/welcome ""', "200 result=0 endpos=1")
        await second.expect('STREAM FILE keybox/welcome ""', "200 result=-1 endpos=0")
        await second.expect("CHANNEL STATUS", "200 result=6")  # a missing sound: logged, goes on
        await second.expect("GET DATA keybox/enter-pin 6000 4", "200 result=9876")
        await first.expect("GET DATA keybox/enter-pin 6000 4", "200 result=5432")
        for peer in (first, second):
            await peer.expect("HANGUP", "200 result=1")
            await peer.assert_closed_by_server()

    events = [e for e in captured_log.events() if e["event"].startswith("test.") or e["event"] == "agi.sound_missing"]
    assert len(events) == 5
    for event in events:
        assert event["call_id"] in ("5.1", "5.2") and event["route"] == "keybox"
    assert [e["call_id"] for e in events if e["event"] == "agi.sound_missing"] == ["5.2"]
    assert "9876" not in captured_log.text and "5432" not in captured_log.text


async def test_many_concurrent_calls_all_complete(handlers: Handlers) -> None:
    calls = 200
    async with serving(handlers.pin) as server:
        peers = await asyncio.gather(*(Peer.call(server.port, unique_id=f"6.{n}") for n in range(calls)))
        await asyncio.wait_for(asyncio.gather(*(peer.pin_call(f"{n % 10000:04d}") for n, peer in enumerate(peers))), 10)
        await until(lambda: server.active == 0)

    assert len(handlers.seen) == calls
    assert all(seen.outcome == "done" for seen in handlers.seen.values())
    assert {seen.digits for seen in handlers.seen.values()} == {f"{n:04d}" for n in range(calls)}


# -- who may connect, and connections that are not calls yet ---------------------------------


async def test_a_peer_outside_the_allow_list_is_closed_before_anything_is_read(
    handlers: Handlers, captured_log: CapturedLog
) -> None:
    dropped: list[str] = []
    async with serving(handlers.pin, allow=parse_networks("10.0.0.0/8,::1/128")) as server:
        server.on_dropped.append(dropped.append)
        peer = await Peer.call(server.port, unique_id="7.1")  # a whole environment: still refused
        await peer.assert_closed_by_server()
        assert (server.active, server.pending) == (0, 0)

    assert handlers.seen == {}
    [event] = captured_log.events("agi.peer_refused")
    assert event["level"] == "warning" and event["peer"].startswith("127.0.0.1:")
    assert "exception" not in event
    assert not captured_log.events("agi.bad_environment")
    assert dropped == ["refused"]


async def test_ipv6_loopback_is_allowed_by_default(handlers: Handlers) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        server = FastAgiServer(handlers.pin, "::1", 0)
        await server.start()
    except OSError:
        pytest.skip("no IPv6 loopback")
    try:
        reader, writer = await asyncio.open_connection("::1", server.port)
        peer = Peer(reader, writer)
        await peer.send_env(environment("keybox", "7.2"))
        await peer.pin_call()
    finally:
        await server.drain(0)
    assert handlers.seen["7.2"].outcome == "done"


async def test_connections_still_reading_their_environment_are_pending_not_calls(handlers: Handlers) -> None:
    async with serving(handlers.pin, env_timeout=60) as server:
        silent = [await Peer.connect(server.port) for _ in range(5)]
        await until(lambda: server.pending == 5)
        assert server.active == 0

        peer = await Peer.call(server.port, unique_id="7.3")
        await peer.expect('STREAM FILE keybox/welcome ""', "200 result=0 endpos=8000")
        assert (server.active, server.pending) == (1, 5)
        await peer.expect("GET DATA keybox/enter-pin 6000 4", "200 result=1234")
        await peer.expect("HANGUP", "200 result=1")
        await peer.assert_closed_by_server()
        for other in silent:
            other.writer.close()

    assert handlers.seen["7.3"].outcome == "done"


async def test_past_the_pending_cap_the_oldest_silent_connection_is_closed(
    handlers: Handlers, captured_log: CapturedLog
) -> None:
    dropped: list[str] = []
    async with serving(handlers.pin, env_timeout=60, max_pending=4) as server:
        server.on_dropped.append(dropped.append)
        silent = [await Peer.connect(server.port) for _ in range(4)]
        await until(lambda: server.pending == 4)
        newer = [await Peer.connect(server.port) for _ in range(6)]
        await until(lambda: server.pending == 4)
        for oldest in silent:
            await oldest.assert_closed_by_server()

        peer = await Peer.call(server.port, unique_id="7.4")  # a real call still gets through
        await peer.pin_call()
        assert server.pending == 3  # the real call was pending a moment too: one more made room
        assert not captured_log.events("agi.bad_environment")  # closed on purpose, said once
        for other in newer:
            other.writer.close()
        await until(lambda: server.pending == 0)

    assert handlers.seen["7.4"].outcome == "done"
    evicted = captured_log.events("agi.pending_evicted")
    assert 1 <= len(evicted) < 7  # at most a line a second, however many
    assert evicted[0]["level"] == "warning" and evicted[0]["count"] == 1
    # each of the 6 newer, then the real call, made room once; the 3 left closed by their peers
    assert dropped == ["evicted"] * 7 + ["no_environment"] * 3
