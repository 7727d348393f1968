"""The AMI wrapper against a scripted peer on loopback: each panoramisk 1.4 defect the contract
names, shown raw where practical, and handled by `AmiConnection`."""

from __future__ import annotations

import asyncio
import io
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from panoramisk import Manager
from support.ami_peer import SECRET, Connection, Received, ScriptedAmi

from ivr.errors import AmiError, PlatformUnavailableError, SettingsError
from ivr.outbound.platforms.asterisk import AmiConnection, AmiMessage, ConnectionLost

ORIGINATE = {"Action": "Originate", "Channel": "PJSIP/5551234@carrier", "Context": "keybox-announce",
             "Exten": "s", "Priority": "1", "ActionID": "JOB-1", "ChannelId": "JOB-1"}



@pytest.fixture
async def peer() -> AsyncIterator[ScriptedAmi]:
    async with ScriptedAmi() as server:
        yield server


def connection(peer: ScriptedAmi, **options: Any) -> AmiConnection:
    settings: dict[str, Any] = {"action_timeout": 1.0, "ping_interval": 30.0, "reconnect_min": 0.01,
                                "reconnect_max": 0.05}
    settings.update(options)
    return AmiConnection(host="127.0.0.1", port=peer.port, username="keybox",
                         secret=settings.pop("secret", SECRET), **settings)


def raw_manager(peer: ScriptedAmi, **options: Any) -> Manager:
    return Manager(host="127.0.0.1", port=peer.port, username="keybox", secret=SECRET,
                   loop=asyncio.get_running_loop(), ping_delay=600, reconnect_timeout=0, **options)


def originate_answer(connection: Connection, action: Received) -> None:
    """What Asterisk sends for an async Originate that is answered: the ack, then the event."""
    connection.answer(action, Message="Originate successfully queued")
    connection.send(("Event", "OriginateResponse"), ("ActionID", action.get("ActionID")), ("Response", "Success"),
                    ("Channel", "PJSIP/carrier-00000001"), ("Context", "keybox-announce"), ("Exten", "s"),
                    ("Reason", "4"), ("Uniqueid", action.get("ChannelId")))


# 1. connect() returns before the login's answer


async def test_raw_connect_returns_before_the_login_is_answered(peer: ScriptedAmi) -> None:
    peer.hold_login = asyncio.Event()
    manager = raw_manager(peer)
    await manager.connect()
    await peer.wait_until(lambda: bool(peer.actions("login")))
    assert not manager.authenticated  # connect() is over, the login is not
    peer.hold_login.set()
    manager.close()


async def test_start_returns_once_the_login_is_answered(peer: ScriptedAmi) -> None:
    peer.hold_login = asyncio.Event()
    ami = connection(peer)
    starting = asyncio.create_task(ami.start())
    await peer.wait_until(lambda: bool(peer.actions("login")))
    assert not starting.done() and not ami.connected
    peer.hold_login.set()
    await asyncio.wait_for(starting, 2)
    assert ami.connected
    await ami.close()


async def test_a_refused_login_is_a_settings_error_naming_the_setting(peer: ScriptedAmi,
                                                                      log_text: io.StringIO) -> None:
    wrong = "not-the-secret-9f3a"
    ami = connection(peer, secret=wrong)
    with pytest.raises(SettingsError) as caught:
        await ami.start()
    message = str(caught.value)
    assert message.startswith("IVR_AMI_SECRET: ") and "'keybox'" in message and "IVR_AMI_USERNAME" in message
    assert wrong not in message and wrong not in log_text.getvalue()
    assert not ami.started and not ami.connected
    await ami.close()


async def test_the_secret_is_never_logged_nor_kept_by_panoramisk_logs(peer: ScriptedAmi,
                                                                      log_text: io.StringIO) -> None:
    ami = connection(peer)
    await ami.start()
    await ami.send({"Action": "Ping"})
    await ami.close()
    assert peer.actions("login")[0].get("Secret") == SECRET
    text = log_text.getvalue()
    assert "ami_connected" in text and SECRET not in text


# 2. Originate without Async


async def test_an_originate_is_always_sent_async(peer: ScriptedAmi) -> None:
    peer.handlers["originate"] = originate_answer
    ami = connection(peer)
    await ami.start()
    await ami.send(ORIGINATE)
    await ami.send({**ORIGINATE, "ActionID": "JOB-2", "Async": "false"})
    assert [a.all("Async") for a in peer.actions("originate")] == [["true"], ["true"]]
    await ami.close()


# 3. OriginateResponse goes to the action's future, not to event handlers


async def test_raw_originate_response_never_reaches_event_handlers(peer: ScriptedAmi) -> None:
    peer.handlers["originate"] = originate_answer
    manager = raw_manager(peer)
    seen: list[Any] = []
    manager.register_event("OriginateResponse", lambda _m, event: seen.append(event))
    await manager.connect()
    answer = await asyncio.wait_for(manager.send_action({**ORIGINATE, "Async": "true"}), 2)
    assert [m.get("Event") for m in answer] == [None, "OriginateResponse"]  # both in the future
    assert seen == []
    manager.close()


async def test_originate_response_reaches_the_event_streams(peer: ScriptedAmi) -> None:
    peer.handlers["originate"] = originate_answer
    ami = connection(peer)
    await ami.start()
    with ami.events() as stream:
        answer = await ami.send(ORIGINATE)
        assert answer.success and answer.message == "Originate successfully queued"
        event = await stream.next(2)
    assert isinstance(event, AmiMessage)
    assert (event.event, event.action_id, event.get("Reason")) == ("OriginateResponse", "JOB-1", "4")
    await ami.close()


# 4. Actions in flight are sent again after a reconnect


def drop_on_originate(connection: Connection, _action: Received) -> None:
    if connection.index == 1:
        connection.drop()


async def test_raw_an_originate_in_flight_is_sent_again_after_a_reconnect(peer: ScriptedAmi) -> None:
    peer.handlers["originate"] = drop_on_originate
    manager = raw_manager(peer)
    await manager.connect()
    manager.send_action({**ORIGINATE, "Async": "true"})
    await peer.wait_until(lambda: len(peer.actions("originate")) == 2)
    assert [a.connection for a in peer.actions("originate")] == [1, 2]  # the same call, twice
    manager.close()


async def test_an_originate_in_flight_is_never_sent_again(peer: ScriptedAmi) -> None:
    peer.handlers["originate"] = drop_on_originate
    ami = connection(peer)
    await ami.start()
    with ami.events() as stream:
        with pytest.raises(AmiError, match="lost before Asterisk answered originate"):
            await ami.send(ORIGINATE)
        assert isinstance(await stream.next(2), ConnectionLost)
    assert await ami.wait_connected(2) and len(peer.connections) == 2
    await ami.send({"Action": "Ping"})  # the new connection is in use: anything queued went first
    assert [a.connection for a in peer.actions("originate")] == [1]
    await ami.close()


# 5. A half-open connection is never noticed


async def test_the_watchdog_reconnects_a_silent_connection(peer: ScriptedAmi) -> None:
    peer.silent_after_login = True
    ami = connection(peer, ping_interval=0.05, action_timeout=0.2)
    await ami.start()
    with ami.events() as stream:
        lost = await stream.next(3)
        assert isinstance(lost, ConnectionLost) and "Ping" in lost.reason
        peer.silent_after_login = False
        await peer.wait_until(lambda: len(peer.connections) >= 2)
    assert await ami.wait_connected(2)
    assert ami.connections >= 2 and peer.actions("ping")[0].connection == 1
    await ami.close()


# 6. PlayDTMF raises KeyError('async')


def dtmf_answer(connection: Connection, action: Received) -> None:
    connection.answer(action, Message="DTMF successfully queued")


async def test_raw_play_dtmf_answer_breaks_panoramisk(peer: ScriptedAmi) -> None:
    peer.handlers["playdtmf"] = dtmf_answer
    loop = asyncio.get_running_loop()
    errors: list[BaseException] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context.get("exception")))
    manager = raw_manager(peer)
    await manager.connect()
    future = manager.send_action({"Action": "PlayDTMF", "Channel": "PJSIP/x-1", "Digit": "1"})
    await peer.wait_until(lambda: bool(peer.actions("playdtmf")))
    done, _ = await asyncio.wait([future], timeout=0.5)
    assert not done  # never answered
    assert any(isinstance(e, KeyError) and e.args == ("async",) for e in errors)  # inside data_received
    loop.set_exception_handler(None)
    manager.close()


async def test_play_dtmf_is_answered(peer: ScriptedAmi) -> None:
    peer.handlers["playdtmf"] = dtmf_answer
    ami = connection(peer)
    await ami.start()
    answer = await ami.send({"Action": "PlayDTMF", "Channel": "PJSIP/x-1", "Digit": "1"})
    assert answer.success and answer.message == "DTMF successfully queued"
    assert (await ami.send({"Action": "Ping"})).get("Ping") == "Pong" and ami.connections == 1
    await ami.close()


# Deadlines, lists, unreachable hosts


async def test_every_action_has_a_deadline(peer: ScriptedAmi) -> None:
    peer.handlers["status"] = lambda _c, _a: None
    ami = connection(peer, action_timeout=0.2)
    await ami.start()
    with pytest.raises(AmiError, match=r"did not answer Status within 0\.2 s"):
        await ami.send({"Action": "Status"})
    assert ami.connected
    await ami.close()


async def test_a_list_action_returns_every_event(peer: ScriptedAmi) -> None:
    def channels(connection: Connection, action: Received) -> None:
        connection.answer(action, EventList="start", Message="Channels will follow")
        connection.send(("Event", "CoreShowChannel"), ("ActionID", action.get("ActionID")), ("Uniqueid", "JOB-1"),
                        ("ChannelStateDesc", "Up"))
        connection.send(("Event", "CoreShowChannelsComplete"), ("ActionID", action.get("ActionID")),
                        ("EventList", "Complete"), ("ListItems", "1"))

    peer.handlers["coreshowchannels"] = channels
    ami = connection(peer)
    await ami.start()
    entries = await ami.send_list({"Action": "CoreShowChannels"})
    assert [e.event for e in entries] == ["", "CoreShowChannel", "CoreShowChannelsComplete"]
    assert entries[1].get("uniqueid") == "JOB-1"
    await ami.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_an_unreachable_host_is_a_warning_then_reconnects_with_backoff(log_text: io.StringIO) -> None:
    port = free_port()
    ami = AmiConnection(host="127.0.0.1", port=port, username="keybox", secret=SECRET, action_timeout=1.0,
                        reconnect_min=0.01, reconnect_max=0.05)
    await ami.start()  # no error: jobs wait for the Manager
    assert ami.started and not ami.connected
    with pytest.raises(PlatformUnavailableError, match="not connected"):
        await ami.send(ORIGINATE)
    events = [json.loads(line) for line in log_text.getvalue().splitlines()]
    assert any(e["event"] == "ami_unreachable" and e["level"] == "warning" for e in events)
    async with ScriptedAmi(listen_port=port) as peer:
        assert await ami.wait_connected(3)
        assert peer.received[0].name == "login" and not peer.actions("originate")
        await ami.close()


async def test_raw_pings_go_unanswered_and_nothing_notices(peer: ScriptedAmi) -> None:
    """panoramisk's pinger (whole seconds only) sends Ping and never reads the answer (defect 5)."""
    peer.silent_after_login = True
    manager = Manager(host="127.0.0.1", port=peer.port, username="keybox", secret=SECRET,
                      loop=asyncio.get_running_loop(), ping_delay=1, ping_interval=1)
    await manager.connect()
    await peer.wait_until(lambda: len(peer.actions("ping")) >= 2)
    assert len(peer.connections) == 1 and manager._connected  # silent, and still "connected"
    manager.close()
