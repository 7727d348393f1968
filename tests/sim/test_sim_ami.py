"""The simulated Asterisk's AMI mode on the wire: banner, login, the actions, the fault knobs.

Every test talks to a real `SimulatedAmi` over a loopback socket with raw AMI text (`AmiClient`),
as a manager client would; the calls themselves are in test_sim_ami_calls.py.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest
from support.ami_client import PATIENCE, QUIET, AmiClient, value

from ivr.sim import SimulatedAmi


@pytest.fixture
async def ami() -> AsyncIterator[SimulatedAmi]:
    async with SimulatedAmi() as simulated:
        yield simulated


@pytest.fixture
async def client(ami: SimulatedAmi) -> AsyncIterator[AmiClient]:
    connection = await AmiClient.connect(ami)
    yield connection
    connection.close()


async def test_the_banner_is_the_first_line(client: AmiClient) -> None:
    assert client.banner == b"Asterisk Call Manager/11.0.0\r\n"


async def test_login_is_accepted_with_the_action_id_echoed(client: AmiClient) -> None:
    reply = await client.action("Login", "login", ("Username", "KeyBox"), ("Secret", "sim-secret"))
    assert reply == [("Response", "Success"), ("ActionID", "login"), ("Message", "Authentication accepted")]
    booted = await client.next()
    assert value(booted, "Event") == "FullyBooted" and value(booted, "Privilege") == "system,all"
    again = await client.login()
    assert value(again, "Message") == "Already authenticated"


@pytest.mark.parametrize("refuse", [False, True], ids=["wrong-secret", "refuse_login"])
async def test_a_refused_login_is_an_error_and_the_connection_closes(
    ami: SimulatedAmi, client: AmiClient, refuse: bool, capsys: pytest.CaptureFixture[str],
) -> None:
    ami.refuse_login = refuse
    reply = await client.login("sim-secret" if refuse else "guess")
    assert reply == [("Response", "Error"), ("ActionID", "login"), ("Message", "Authentication failed")]
    assert await client.closed()
    logged = capsys.readouterr()
    assert "ami_sim.login_refused" in logged.out + logged.err
    for secret in ("guess", "sim-secret"):
        assert secret not in logged.out + logged.err + repr(ami)


async def test_an_action_before_login_is_denied_and_the_connection_stays(client: AmiClient) -> None:
    for action in ("Ping", "Originate", "NoSuchThing"):
        reply = await client.action(action, f"early-{action}")
        assert reply == [("Response", "Error"), ("ActionID", f"early-{action}"), ("Message", "Permission denied")]
    assert value(await client.login(), "Response") == "Success"


async def test_ping_answers_pong_with_a_timestamp(client: AmiClient) -> None:
    await client.login()
    reply = await client.action("ping", "p1")  # action names match in any case
    assert [k for k, _ in reply] == ["Response", "ActionID", "Ping", "Timestamp"]
    assert value(reply, "Ping") == "Pong"
    assert re.fullmatch(r"\d{10}\.\d{6}", value(reply, "Timestamp") or "")


async def test_an_unknown_action_and_a_missing_one_are_errors(client: AmiClient) -> None:
    await client.login()
    reply = await client.action("Bogus", "b1")
    assert value(reply, "Response") == "Error"
    assert value(reply, "Message") == (
        "Invalid/unknown command: Bogus. Use Action: ListCommands to show available commands.")
    client.send(("ActionID", "none"))
    assert value(await client.response("none"), "Message") == "Missing action in request"


async def test_logoff_says_goodbye_and_closes(client: AmiClient) -> None:
    await client.login()
    reply = await client.action("Logoff", "bye")
    assert reply == [("Response", "Goodbye"), ("ActionID", "bye"), ("Message", "Thanks for all the fish.")]
    assert await client.closed()


async def test_originate_is_checked_before_anything_is_dialled(ami: SimulatedAmi, client: AmiClient) -> None:
    await client.login()
    cases = {
        "Channel not specified": [("Context", "keybox-announce")],
        "Invalid channel": [("Channel", "5551234")],
        "Invalid timeout": [("Channel", "PJSIP/1@c"), ("Timeout", "soon")],
        "Extension does not exist.": [("Channel", "PJSIP/1@c"), ("Context", "nowhere"), ("Exten", "s"),
                                      ("Priority", "1")],
        "Uniqueid length exceeds maximum of 149": [("Channel", "PJSIP/1@c"), ("ChannelId", "x" * 150)],
    }
    for number, (message, headers) in enumerate(cases.items()):
        reply = await client.action("Originate", f"bad{number}", *headers)
        assert (value(reply, "Response"), value(reply, "Message")) == ("Error", message)
    assert ami.originates == []


async def test_a_message_over_64_kib_closes_the_connection(client: AmiClient) -> None:
    await client.login()
    client.send(("Action", "Ping"), ("X-Padding", "x" * 70_000))
    assert await client.closed()


async def test_more_than_200_headers_close_the_connection(client: AmiClient) -> None:
    await client.login()
    client.send(("Action", "Ping"), *[(f"X-{n}", "1") for n in range(200)])
    assert await client.closed()


async def test_a_connection_past_the_limit_is_closed_before_the_banner() -> None:
    async with SimulatedAmi(max_connections=2) as ami:
        first, second = await AmiClient.connect(ami), await AmiClient.connect(ami)
        reader, writer = await asyncio.open_connection("127.0.0.1", ami.port)
        assert await asyncio.wait_for(reader.read(), PATIENCE) == b""
        writer.close()
        for connection in (first, second):
            assert value(await connection.login(), "Response") == "Success"
            connection.close()


async def test_no_login_within_the_auth_timeout_closes_the_connection() -> None:
    async with SimulatedAmi(auth_timeout=0.1) as ami:
        connection = await AmiClient.connect(ami)
        assert await connection.closed()


async def test_silent_keeps_connections_open_but_answers_nothing_ever_again(
    ami: SimulatedAmi, client: AmiClient,
) -> None:
    await client.login()
    ami.silent = True
    client.send(("Action", "Ping"), ("ActionID", "p"))
    assert await client.quiet()
    reader, writer = await asyncio.open_connection("127.0.0.1", ami.port)  # no banner either
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(1), QUIET)
    assert ami.connections == 2

    ami.silent = False  # a new connection works again; the quiet ones stay quiet
    fresh = await AmiClient.connect(ami)
    assert value(await fresh.login(), "Response") == "Success"
    client.send(("Action", "Ping"), ("ActionID", "p2"))
    assert await client.quiet()
    writer.close()
    fresh.close()
