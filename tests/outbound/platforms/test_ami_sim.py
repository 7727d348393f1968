"""Defect 2 against the simulated Asterisk, which holds a Manager session for a synchronous
Originate as Asterisk does: panoramisk sends what it is given; the wrapper always sends Async."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from panoramisk import Manager

from ivr.outbound.platforms.asterisk import AmiConnection
from ivr.sim import SimulatedAmi

SECRET = "sim-secret-3c9e"
ORIGINATE = {"Action": "Originate", "Channel": "PJSIP/5551234@carrier", "Context": "keybox-announce",
             "Exten": "s", "Priority": "1", "ActionID": "JOB-1", "ChannelId": "JOB-1", "Timeout": "30000"}


@pytest.fixture
async def sim() -> AsyncIterator[SimulatedAmi]:
    async with SimulatedAmi(username="keybox", secret=SECRET, ring_seconds=2.0) as server:
        yield server


async def test_raw_an_originate_without_async_holds_the_session(sim: SimulatedAmi) -> None:
    manager = Manager(host="127.0.0.1", port=sim.port, username="keybox", secret=SECRET,
                      loop=asyncio.get_running_loop(), ping_delay=600)
    await manager.connect()
    assert (await asyncio.wait_for(manager.send_action({"Action": "Ping"}), 2)).success  # logged in
    manager.send_action(dict(ORIGINATE))  # no Async: the session answers nothing until the call ends
    done, _ = await asyncio.wait([manager.send_action({"Action": "Ping"})], timeout=0.5)
    assert not done
    manager.close()


async def test_the_wrapper_originates_async_and_the_session_stays_free(sim: SimulatedAmi) -> None:
    ami = AmiConnection(host="127.0.0.1", port=sim.port, username="keybox", secret=SECRET, action_timeout=0.5)
    await ami.start()
    answer = await ami.send(ORIGINATE)  # no Async given
    assert answer.message == "Originate successfully queued" and sim.originates[0].is_async
    assert (await ami.send({"Action": "Ping"})).get("ping") == "Pong"
    await ami.close()
