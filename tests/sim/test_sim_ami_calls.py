"""Calls through the simulated Asterisk's AMI: Originate outcomes, notice and bridge, faults.

Raw AMI text over real sockets (`AmiClient` from test_sim_ami.py). An answered notice's AGI
call goes to a tiny FastAGI responder standing in for the service (it records the environment,
runs a few commands, then HANGUP), or, in the last test, to the real service.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.ami_client import PATIENCE, AmiClient, Message, value
from support.line import running_line

from ivr.outbound import Outbound
from ivr.sim import SimulatedAmi


@dataclass
class Responder:
    """A FastAGI listener in the service's place; `release` holds each call up until set."""

    address: str = ""
    commands: list[str] = field(default_factory=list)
    environments: asyncio.Queue[dict[str, str]] = field(default_factory=asyncio.Queue)
    replies: list[str] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        environment = {}
        while (line := (await reader.readline()).decode().rstrip("\n")):
            key, _, rest = line.partition(": ")
            environment[key] = rest
        await self.environments.put(environment)
        for command in [*self.commands, "HANGUP"]:
            if command == "HANGUP":
                await self.release.wait()
            writer.write(command.encode() + b"\n")
            self.replies.append((await reader.readline()).decode().strip())
        writer.close()


@pytest.fixture
async def responder() -> AsyncIterator[Responder]:
    harness = Responder()
    harness.release.set()
    server = await asyncio.start_server(harness.serve, "127.0.0.1", 0)
    harness.address = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    yield harness
    server.close()


@pytest.fixture
async def ami(responder: Responder, tmp_path: Path) -> AsyncIterator[SimulatedAmi]:
    async with SimulatedAmi(agi_address=responder.address, heard_dir=tmp_path / "heard") as simulated:
        yield simulated


@pytest.fixture
async def client(ami: SimulatedAmi) -> AsyncIterator[AmiClient]:
    connection = await AmiClient.connect(ami)
    await connection.login()
    yield connection
    connection.close()


def notice(number: str, action_id: str, *extra: tuple[str, str], job: str = "job-1") -> list[tuple[str, str]]:
    """An Originate as the service sends a notice."""
    return [("Channel", f"PJSIP/{number}@carrier"), ("Context", "keybox-announce"), ("Exten", "s"),
            ("Priority", "1"), ("Async", "true"), ("CallerID", '"Keybox" <8005550199>'),
            ("Variable", f"IVR_JOB_ID={job}"), ("Variable", f"IVR_ATTEMPT_ID={action_id}"), *extra]


async def call_events(client: AmiClient, action_id: str, uniqueid: str, last: str = "Hangup") -> list[Message]:
    """The events of one call up to the first `last` event (OriginateResponse matched by ActionID)."""
    events: list[Message] = []
    while True:
        message = await client.next()
        mine = value(message, "Uniqueid") == uniqueid or value(message, "ActionID") == action_id
        if mine and "Event" in dict(message):
            events.append(message)
            if value(message, "Event") == last:
                return events


def names(events: list[Message]) -> list[str]:
    return [f"{value(m, 'Event')}{'/' + (value(m, 'ChannelState') or '') if value(m, 'Event') == 'Newstate' else ''}"
            for m in events]


@pytest.mark.parametrize(("number", "reason", "cause", "text"), [
    ("5550101", "5", "17", "User busy"),
    ("5550102", "3", "19", "User alerting, no answer"),
    ("5550103", "8", "34", "Circuit/channel congestion"),
])
async def test_a_call_not_answered_hangs_up_then_fails_with_its_reason(
    client: AmiClient, number: str, reason: str, cause: str, text: str,
) -> None:
    reply = await client.action("Originate", "a1", *notice(number, "a1"), ("ChannelId", "1700000000.501"))
    assert reply == [("Response", "Success"), ("ActionID", "a1"), ("Message", "Originate successfully queued")]

    events = await call_events(client, "a1", "1700000000.501", last="OriginateResponse")
    assert names(events) == ["Newchannel", "Newstate/5", "Hangup", "OriginateResponse"]
    assert value(events[1], "ChannelStateDesc") == "Ringing"
    assert re.fullmatch(r"PJSIP/carrier-[0-9a-f]{8}", value(events[0], "Channel") or "")
    assert (value(events[2], "Cause"), value(events[2], "Cause-txt")) == (cause, text)
    response = dict(events[3])
    assert response["ActionID"] == "a1" and response["Privilege"] == "call,all"
    assert (response["Response"], response["Reason"]) == ("Failure", reason)
    assert (response["Channel"], response["Uniqueid"]) == (f"PJSIP/{number}@carrier", "1700000000.501")
    assert (response["CallerIDNum"], response["CallerIDName"]) == ("8005550199", "Keybox")


async def test_a_number_that_cannot_be_called_creates_no_channel(ami: SimulatedAmi, client: AmiClient) -> None:
    await client.action("Originate", "f1", *notice("5550104", "f1"))
    response = await client.event("OriginateResponse", ActionID="f1")
    assert (value(response, "Response"), value(response, "Reason")) == ("Failure", "0")
    assert value(response, "Uniqueid") == "<unknown>"  # no ChannelId given, and no channel
    await ami.settled(PATIENCE)
    assert [value(m, "Event") for m in client.seen if value(m, "Event") not in (None, "FullyBooted")] == [
        "OriginateResponse"]
    assert ami.originates[0].outcome == "failed"


async def test_an_answered_notice_runs_announce_over_fastagi(
    ami: SimulatedAmi, client: AmiClient, responder: Responder,
) -> None:
    ami.callee_digits["5551234"] = "1"
    responder.commands = ["WAIT FOR DIGIT 1000"]
    await client.action("Originate", "att-1", *notice("5551234", "att-1", ("ChannelId", "1700000000.7"),
                                                       job="job 7/x"))
    environment = await asyncio.wait_for(responder.environments.get(), PATIENCE)
    events = await call_events(client, "att-1", "1700000000.7")

    assert names(events) == ["Newchannel", "Newstate/5", "Newstate/6", "OriginateResponse", "Hangup"]
    assert (value(events[3], "Response"), value(events[3], "Reason")) == ("Success", "4")
    assert value(events[3], "Channel") == value(events[0], "Channel")
    assert (value(events[4], "Cause"), value(events[4], "Cause-txt")) == ("16", "Normal Clearing")
    assert environment["agi_network_script"] == "announce?job=job+7%2Fx&attempt=att-1"
    assert environment["agi_uniqueid"] == "1700000000.7"
    assert environment["agi_channel"] == value(events[0], "Channel")
    assert environment["agi_callerid"] == "8005550199"
    assert responder.replies == ["200 result=49", "200 result=1"]  # the callee pressed 1
    await ami.settled(PATIENCE)
    assert [call.unique_id for call in ami.calls] == ["1700000000.7"]
    assert ami.originates[0].variables == {"IVR_JOB_ID": "job 7/x", "IVR_ATTEMPT_ID": "att-1"}


async def test_with_no_fastagi_listener_the_answered_channel_just_hangs_up(tmp_path: Path) -> None:
    async with SimulatedAmi(agi_address="127.0.0.1:1") as ami:
        client = await AmiClient.connect(ami)
        await client.login()
        await client.action("Originate", "n1", *notice("5551234", "n1"))
        response = await client.event("OriginateResponse", ActionID="n1")
        uniqueid = value(response, "Uniqueid") or ""
        assert re.fullmatch(r"\d+\.\d+", uniqueid)
        hangup = await client.event("Hangup", Uniqueid=uniqueid)
        assert value(hangup, "Cause") == "16"
        assert ami.calls == []
        client.close()


async def test_outcomes_override_the_rules_per_number(ami: SimulatedAmi, client: AmiClient) -> None:
    ami.outcomes["5551234"] = "busy"
    await client.action("Originate", "o1", *notice("5551234", "o1"))
    assert value(await client.event("OriginateResponse", ActionID="o1"), "Reason") == "5"


async def test_heard_dir_keeps_the_newest_transcripts_with_codes_masked(
    ami: SimulatedAmi, client: AmiClient, responder: Responder, tmp_path: Path,
) -> None:
    heard = tmp_path / "heard"
    heard.mkdir()
    for n in range(200):
        (heard / f"old-{n:03d}.txt").write_text("old\n")
        os.utime(heard / f"old-{n:03d}.txt", (1_000_000 + n, 1_000_000 + n))
    responder.commands = ['SAY DIGITS 4719283 ""']
    await client.action("Originate", "h1", *notice("5551234", "h1", job="job-9"))
    await ami.settled(PATIENCE)

    text = (heard / "job-9.txt").read_text()
    assert "[digits] *****83" in text.splitlines()
    assert "4719283" not in text and "4 7 1 9" not in text
    files = sorted(path.name for path in heard.iterdir())
    assert len(files) == 200 and "old-000.txt" not in files and "old-001.txt" in files


async def test_a_synchronous_originate_answers_once_the_outcome_is_known(client: AmiClient) -> None:
    sync = [("Async", "false")]
    reply = await client.action("Originate", "s1", *notice("5551234", "s1")[:4], *sync, ("ChannelId", "1.1"))
    assert value(reply, "Message") == "Originate successfully queued"
    assert "Newstate/6" in names([m for m in client.seen if value(m, "Uniqueid") == "1.1"])  # answered first
    reply = await client.action("Originate", "s2", *notice("5550101", "s2")[:4], *sync)
    assert (value(reply, "Response"), value(reply, "Message")) == ("Error", "Originate failed")
    ping = await client.action("Ping", "after")
    assert value(ping, "Ping") == "Pong"
    assert not [m for m in client.seen if value(m, "Event") == "OriginateResponse"]


async def test_events_go_only_to_connections_that_want_them(ami: SimulatedAmi, client: AmiClient) -> None:
    deaf = await AmiClient.connect(ami)
    await deaf.login(events="off")
    await deaf.action("Originate", "e1", *notice("5551234", "e1"))
    await client.event("Hangup")
    await deaf.action("Ping", "p")
    assert [value(m, "Response") for m in deaf.seen] == ["Success", "Success", "Success"]
    deaf.close()


async def test_a_dropped_originate_still_calls_and_a_new_connection_sees_the_channel(
    ami: SimulatedAmi, client: AmiClient, responder: Responder,
) -> None:
    responder.release.clear()  # the announce call stays up
    ami.drop_on_originate = 1
    client.send(("Action", "Originate"), ("ActionID", "d1"), *notice("5551234", "d1", ("ChannelId", "1700000000.9")))
    assert await client.closed()
    assert not [m for m in client.seen if value(m, "ActionID") == "d1"]
    environment = await asyncio.wait_for(responder.environments.get(), PATIENCE)
    assert environment["agi_uniqueid"] == "1700000000.9"

    again = await AmiClient.connect(ami)
    await again.login()
    listed = await again.action("CoreShowChannels", "c1")
    assert value(listed, "EventList") == "start" and value(listed, "Message") == "Channels will follow"
    channel = await again.event("CoreShowChannel", ActionID="c1")
    assert (value(channel, "Uniqueid"), value(channel, "ChannelState")) == ("1700000000.9", "6")
    assert value(channel, "Application") == "AGI"
    complete = await again.event("CoreShowChannelsComplete", ActionID="c1")
    assert (value(complete, "EventList"), value(complete, "ListItems")) == ("Complete", "1")

    responder.release.set()
    assert value(await again.event("Hangup", Uniqueid="1700000000.9"), "Cause") == "16"
    await ami.settled(PATIENCE)
    assert len(ami.calls) == 1 and ami.drop_on_originate == 0
    again.close()


async def test_the_hangup_action_ends_a_ringing_call(ami: SimulatedAmi, client: AmiClient) -> None:
    ami.ring_seconds = 30
    await client.action("Originate", "r1", *notice("5551234", "r1", ("ChannelId", "1700000000.3")))
    ringing = await client.event("Newstate", Uniqueid="1700000000.3")
    reply = await client.action("Hangup", "x1", ("Channel", value(ringing, "Channel") or ""))
    assert value(reply, "Message") == "Channel Hungup"
    assert value(await client.event("Hangup", Uniqueid="1700000000.3"), "Cause") == "16"
    response = await client.event("OriginateResponse", ActionID="r1")
    assert (value(response, "Response"), value(response, "Reason")) == ("Failure", "1")
    reply = await client.action("Hangup", "x2", ("Channel", "PJSIP/nobody-00000000"))
    assert value(reply, "Message") == "No such channel"


@pytest.mark.parametrize(("number", "status"), [
    ("5551234", "ANSWER"), ("5550101", "BUSY"), ("5550102", "NOANSWER"), ("5550103", "CONGESTION"),
    ("5550104", "CHANUNAVAIL"),
])
async def test_a_bridge_dials_the_key_holder_and_reports_the_dial_status(
    ami: SimulatedAmi, client: AmiClient, number: str, status: str,
) -> None:
    await client.action("Originate", "b1", ("Channel", "PJSIP/agent1"), ("Context", "keybox-bridge"),
                        ("Exten", "s"), ("Priority", "1"), ("Async", "true"), ("ChannelId", "1700000000.20"),
                        ("Variable", f"IVR_BRIDGE_DIAL=PJSIP/{number}@carrier"),
                        ("Variable", "IVR_JOB_ID=job-b,IVR_ATTEMPT_ID=att-b"))
    response = await client.event("OriginateResponse", ActionID="b1")
    assert (value(response, "Response"), value(response, "Reason")) == ("Success", "4")
    assert re.fullmatch(r"PJSIP/agent1-[0-9a-f]{8}", value(response, "Channel") or "")
    await client.event("Hangup", Uniqueid="1700000000.20")
    after = client.seen[client.seen.index(response):]
    user = next(m for m in after if value(m, "Event") == "UserEvent")
    assert (value(user, "UserEvent"), value(user, "Privilege")) == ("KeyboxBridge", "user,all")
    assert (value(user, "Attempt"), value(user, "Job"), value(user, "DialStatus")) == ("att-b", "job-b", status)
    assert value(user, "Uniqueid") == "1700000000.20"
    legs = [m for m in after if value(m, "Event") == "Hangup"]
    assert value(legs[-1], "Uniqueid") == "1700000000.20"  # the agent's leg ends last
    key_holder = [m for m in legs if value(m, "Uniqueid") != "1700000000.20"]
    assert len(key_holder) == (0 if status == "CHANUNAVAIL" else 1)
    if key_holder:
        assert value(key_holder[0], "Linkedid") == "1700000000.20"
        answered = any(value(m, "Event") == "Newstate" and value(m, "ChannelState") == "6"
                       and value(m, "Uniqueid") == value(key_holder[0], "Uniqueid") for m in after)
        assert answered == (status == "ANSWER")


async def test_a_bridge_whose_agent_is_busy_never_dials(ami: SimulatedAmi, client: AmiClient) -> None:
    ami.outcomes["agent1"] = "busy"
    await client.action("Originate", "b2", ("Channel", "PJSIP/agent1"), ("Context", "keybox-bridge"),
                        ("Exten", "s"), ("Priority", "1"), ("Async", "true"),
                        ("Variable", "IVR_BRIDGE_DIAL=PJSIP/5551234@carrier"))
    response = await client.event("OriginateResponse", ActionID="b2")
    assert (value(response, "Response"), value(response, "Reason")) == ("Failure", "5")
    await ami.settled(PATIENCE)
    assert [value(m, "Event") for m in client.seen].count("Newchannel") == 1
    assert "UserEvent" not in [value(m, "Event") for m in client.seen]


async def test_an_answered_notice_reaches_the_services_announce_route(tmp_path: Path) -> None:
    message = "Your showing at 12 Elm Street is confirmed."
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()  # held: only this test's call delivers it
    async with running_line(tmp_path / "line", transport="agi") as line:
        job, _ = await Outbound(line.service.services.store, line.settings).submit(  # type: ignore[arg-type]
            {"kind": "notice", "to": "5551234", "not_before": tomorrow, "message": message, "code": "4719283"})
        async with SimulatedAmi(agi_address=line.address, sounds=line.sounds, heard_dir=tmp_path / "heard") as ami:
            client = await AmiClient.connect(ami)
            await client.login()
            await client.action("Originate", "att-42", *notice("5551234", "att-42", ("ChannelId", "1700000000.42"),
                                                                job=job.id))
            await ami.settled(30)
            assert value(await client.event("Hangup", Uniqueid="1700000000.42"), "Cause") == "16"
            client.close()
        record = await line.service.services.records.get("1700000000.42")

    heard = ami.calls[0].transcript
    assert heard.spoken == [message]
    assert heard.said_digits == ["4719283"]
    assert record is not None and record.codes == ["*****83"] and record.attempt_id == "att-42"
    text = (tmp_path / "heard" / f"{job.id}.txt").read_text()
    assert "4719283" not in text and text.count("[digits] *****83") == 1
