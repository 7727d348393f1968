"""Watching for a hang-up while no command runs (`wait_hangup`): Asterisk's ``HANGUP`` line or the
end of the stream, never a reply that belongs to a command; classic AGI's SIGHUP."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from ivr.errors import AgiProtocolError, ChannelHangupError
from ivr.transports.agi import AgiCall, AgiEnvironment

if TYPE_CHECKING:
    from conftest import Link

PATIENCE = 2.0


async def assert_nothing_more_written(link: Link) -> None:
    link.channel.close()
    assert await link.asterisk.rest() == b""


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(PATIENCE):
        while not condition():
            await asyncio.sleep(0.001)


async def test_the_hangup_line_ends_the_watch_and_no_command_is_sent_after(link: Link) -> None:
    watch = asyncio.create_task(link.channel.wait_hangup())
    await link.asterisk.send("HANGUP")

    await asyncio.wait_for(watch, PATIENCE)
    assert link.channel.hung_up
    with pytest.raises(ChannelHangupError):
        await link.channel.execute("ANSWER")
    await assert_nothing_more_written(link)


async def test_the_end_of_the_stream_ends_the_watch(link: Link) -> None:
    watch = asyncio.create_task(link.channel.wait_hangup())
    link.asterisk.writer.close()

    await asyncio.wait_for(watch, PATIENCE)
    assert link.channel.hung_up


async def test_a_known_hang_up_ends_the_watch_at_once(link: Link) -> None:
    with pytest.raises(ChannelHangupError):
        await link.run("ANSWER", "511 Command Not Permitted on a dead channel or intercept routine")

    await asyncio.wait_for(link.channel.wait_hangup(), PATIENCE)


async def test_a_cancelled_watch_keeps_half_a_line_for_the_next_command(link: Link) -> None:
    watch = asyncio.create_task(link.channel.wait_hangup())
    link.asterisk.writer.write(b"HANG")  # the watch is cancelled before the rest comes
    await until(lambda: len(link.reader._buffer) == 4)  # type: ignore[attr-defined]  # arrived, unread
    watch.cancel()
    with pytest.raises(asyncio.CancelledError):
        await watch

    command = asyncio.create_task(link.channel.execute("ANSWER"))
    assert await link.asterisk.command() == "ANSWER"
    await link.asterisk.send("UP", "200 result=0")
    assert (await asyncio.wait_for(command, PATIENCE)).result == 0
    assert link.channel.hung_up  # "HANG" + "UP": the line was read whole, by the command


async def test_a_command_waits_for_the_watch_to_be_cancelled(link: Link) -> None:
    watch = asyncio.create_task(link.channel.wait_hangup())
    command = asyncio.create_task(link.channel.execute("CHANNEL STATUS"))
    await asyncio.sleep(0)
    assert not command.done()

    watch.cancel()
    assert await link.asterisk.command() == "CHANNEL STATUS"
    await link.asterisk.send("200 result=6")
    assert (await asyncio.wait_for(command, PATIENCE)).result == 6
    assert watch.cancelled()


async def test_a_command_queued_behind_the_watch_sees_the_hang_up_and_sends_nothing(link: Link) -> None:
    watch = asyncio.create_task(link.channel.wait_hangup())
    command = asyncio.create_task(link.channel.execute("ANSWER"))
    await link.asterisk.send("HANGUP")

    await asyncio.wait_for(watch, PATIENCE)
    with pytest.raises(ChannelHangupError, match="not sent"):
        await asyncio.wait_for(command, PATIENCE)
    await assert_nothing_more_written(link)


@pytest.mark.parametrize("line", ["200 result=0", "garbage", b"x" * 9000])
async def test_anything_else_between_commands_is_a_protocol_error(link: Link, line: str | bytes) -> None:
    watch = asyncio.create_task(link.channel.wait_hangup())
    await link.asterisk.send(line)

    with pytest.raises(AgiProtocolError):
        await asyncio.wait_for(watch, PATIENCE)
    with pytest.raises(AgiProtocolError, match="out of step"):
        await link.channel.execute("ANSWER")
    await assert_nothing_more_written(link)


# -- AgiCall: classic AGI's SIGHUP ---------------------------------------------------------


def classic_call(link: Link) -> AgiCall:
    env = AgiEnvironment.from_lines(["agi_request: /usr/bin/ivr", "agi_arg_1: keybox", "agi_uniqueid: 1.1"])
    return AgiCall(link.channel, env)


async def test_sighup_ends_a_watch_in_progress(link: Link) -> None:
    call = classic_call(link)
    watch = asyncio.create_task(call.wait_hangup())
    await asyncio.sleep(0)  # the watch has started

    call.mark_hung_up()
    await asyncio.wait_for(watch, PATIENCE)
    assert call.hung_up and not watch.cancelled()
    await asyncio.wait_for(call.wait_hangup(), PATIENCE)  # and any later one at once
    await assert_nothing_more_written(link)


async def test_a_watch_cancelled_from_outside_stays_cancelled_despite_a_sighup(link: Link) -> None:
    call = classic_call(link)
    watch = asyncio.create_task(call.wait_hangup())
    await asyncio.sleep(0)

    watch.cancel()
    call.mark_hung_up()
    with pytest.raises(asyncio.CancelledError):
        await watch
