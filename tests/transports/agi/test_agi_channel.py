from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from ivr.errors import AgiProtocolError, ChannelHangupError
from ivr.transports.agi import commands

if TYPE_CHECKING:
    from conftest import Link

DEAD = "511 Command Not Permitted on a dead channel or intercept routine"


async def assert_nothing_more_written(link: Link) -> None:
    link.channel.close()
    assert await link.asterisk.rest() == b""


async def test_200_reply_is_returned(link: Link) -> None:
    reply = await link.run("GET DATA keybox/enter-pin 6000 4", "200 result=0123 (timeout)")

    assert (reply.code, reply.result_text, reply.timeout) == (200, "0123", True)
    assert not link.channel.hung_up


async def test_minus_one_is_a_reply_not_an_error(link: Link) -> None:
    reply = await link.run('STREAM FILE keybox/missing ""', "200 result=-1 endpos=0")

    assert (reply.result, reply.endpos) == (-1, 0)
    assert not link.channel.hung_up


async def test_trying_then_200(link: Link) -> None:
    reply = await link.run("GOSUB sub s 1", "100 result=0 Trying...", "200 result=0 Gosub complete")

    assert (reply.code, reply.result) == (200, 0)


async def test_510_raises_protocol_error_carrying_the_reply(link: Link) -> None:
    with pytest.raises(AgiProtocolError, match="510 Invalid or unknown command") as caught:
        await link.run("FROB", "510 Invalid or unknown command")

    assert caught.value.reply.code == 510  # type: ignore[attr-defined]
    assert (await link.run("ANSWER", "200 result=0")).result == 0


async def test_one_line_520_raises_and_the_channel_goes_on(link: Link) -> None:
    with pytest.raises(AgiProtocolError, match="520 Invalid command syntax"):
        await link.run("SAY DIGITS", "520 Invalid command syntax.  Proper usage not available.")

    assert (await link.run("ANSWER", "200 result=0")).result == 0


async def test_multi_line_520_then_the_next_command_gets_its_own_reply(link: Link) -> None:
    with pytest.raises(AgiProtocolError, match="520-Invalid command syntax") as caught:
        await link.run(
            "GET DATA",
            "520-Invalid command syntax.  Proper usage follows:",
            " Usage: GET DATA <file to stream> [timeout] [maxdigits]",
            "200 result=1 (looks like a reply)",
            "520 End of proper usage.",
        )
    assert "Usage: GET DATA" in caught.value.reply.data  # type: ignore[attr-defined]

    reply = await link.run("GET VARIABLE IVR_JOB_ID", "200 result=1 (job-7)")

    assert (reply.result, reply.data) == (1, "job-7")


async def test_511_is_a_hang_up_and_later_commands_are_not_sent(link: Link) -> None:
    with pytest.raises(ChannelHangupError):
        await link.run('STREAM FILE keybox/welcome ""', DEAD)

    assert link.channel.hung_up
    with pytest.raises(ChannelHangupError, match="not sent"):
        await link.channel.execute("ANSWER")
    await assert_nothing_more_written(link)


async def test_hangup_line_before_511(link: Link) -> None:
    with pytest.raises(ChannelHangupError):
        await link.run("ANSWER", "HANGUP", DEAD)

    assert link.channel.hung_up


async def test_hangup_line_then_the_reply_still_arrives(link: Link) -> None:
    reply = await link.run('STREAM FILE keybox/welcome ""', "HANGUP", "200 result=-1 endpos=0")

    assert reply.result == -1
    assert link.channel.hung_up
    with pytest.raises(ChannelHangupError):
        await link.channel.execute("ANSWER")
    await assert_nothing_more_written(link)


async def test_hangup_line_without_a_reply_raises_after_the_grace(link: Link) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()

    with pytest.raises(ChannelHangupError, match="no reply"):
        await link.run("ANSWER", "HANGUP")

    assert link.channel.hung_up
    assert loop.time() - started < 1.0  # the grace (0.05 s), not the command timeout (2 s)


async def test_a_trailing_reply_after_the_grace_is_never_read_as_the_next_reply(link: Link) -> None:
    with pytest.raises(ChannelHangupError):
        await link.run("ANSWER", "HANGUP")
    await link.asterisk.send("200 result=0")

    with pytest.raises(ChannelHangupError):
        await link.channel.execute("CHANNEL STATUS")


async def test_peer_closing_mid_command_is_a_hang_up(link: Link) -> None:
    task = asyncio.create_task(link.channel.execute("GET DATA keybox/enter-pin 6000 4"))
    assert await link.asterisk.command() == "GET DATA keybox/enter-pin 6000 4"
    link.asterisk.writer.write(b"200 res")  # half a line, then gone
    link.asterisk.writer.close()

    with pytest.raises(ChannelHangupError, match="ended"):
        await task
    assert link.channel.hung_up


async def test_peer_reset_mid_command_is_a_hang_up(link: Link) -> None:
    task = asyncio.create_task(link.channel.execute("ANSWER"))
    assert await link.asterisk.command() == "ANSWER"
    link.asterisk.reset()

    with pytest.raises(ChannelHangupError):
        await task
    assert link.channel.hung_up


async def test_reply_timeout_is_a_protocol_error_and_stops_the_channel(link: Link) -> None:
    with pytest.raises(AgiProtocolError, match=r"no AGI reply within 0\.05 s"):
        await link.channel.execute("ANSWER", timeout=0.05)
    assert await link.asterisk.command() == "ANSWER"
    await link.asterisk.send("200 result=0")  # too late

    with pytest.raises(AgiProtocolError, match="out of step"):
        await link.channel.execute("CHANNEL STATUS")
    # The late reply was taken for no command's: it is still unread.
    assert await link.reader.readline() == b"200 result=0\n"
    await assert_nothing_more_written(link)


async def test_cancellation_propagates_and_stops_the_channel(link: Link) -> None:
    task = asyncio.create_task(link.channel.execute("GET DATA keybox/enter-pin 6000 4"))
    assert await link.asterisk.command() == "GET DATA keybox/enter-pin 6000 4"

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    with pytest.raises(AgiProtocolError, match="out of step"):
        await link.channel.execute("ANSWER")
    await assert_nothing_more_written(link)


async def test_an_outer_deadline_is_not_mistaken_for_the_command_timeout(link: Link) -> None:
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await link.channel.execute("ANSWER", timeout=5)

    assert await link.asterisk.command() == "ANSWER"
    assert not link.channel.hung_up


async def test_an_unreadable_line_stops_the_channel(link: Link) -> None:
    with pytest.raises(AgiProtocolError, match="not an AGI reply"):
        await link.run("ANSWER", "hello there")

    with pytest.raises(AgiProtocolError, match="out of step"):
        await link.channel.execute("ANSWER")


async def test_over_long_reply_line_stops_the_channel(link: Link) -> None:
    with pytest.raises(AgiProtocolError, match="longer than"):
        await link.run("GET VARIABLE BIG", "200 result=1 (" + "x" * 20_000 + ")")


@pytest.mark.parametrize("line", ['VERBOSE "x" 1\nHANGUP', "ANSWER\r", "ANSWER\x00", "", "x" * 3000])
async def test_injection_and_over_long_lines_are_refused_before_writing(link: Link, line: str) -> None:
    with pytest.raises(ValueError):
        await link.channel.execute(line)

    await assert_nothing_more_written(link)


async def test_builder_refuses_a_newline_so_nothing_reaches_the_socket(link: Link) -> None:
    with pytest.raises(ValueError):
        await link.channel.execute(commands.set_variable("IVR_OUTCOME", "done\nHANGUP"))

    await assert_nothing_more_written(link)


async def test_quoted_arguments_reach_asterisk_intact(link: Link) -> None:
    value = 'say "hi" \\ bye'
    line = commands.set_variable("IVR_NOTE", value)
    task = asyncio.create_task(link.channel.execute(line))

    received = await link.asterisk.command()
    await link.asterisk.send("200 result=1")

    assert commands.split_command(received) == ["SET", "VARIABLE", "IVR_NOTE", value]
    assert (await task).result == 1


async def test_concurrent_commands_take_turns(link: Link) -> None:
    first = asyncio.create_task(link.channel.execute("ANSWER"))
    second = asyncio.create_task(link.channel.execute("CHANNEL STATUS"))

    assert await link.asterisk.command() == "ANSWER"
    await link.asterisk.send("200 result=0")
    assert await link.asterisk.command() == "CHANNEL STATUS"
    await link.asterisk.send("200 result=6")

    assert ((await first).result, (await second).result) == (0, 6)


async def test_channel_alive_tells_a_missing_sound_from_a_hang_up(link: Link) -> None:
    await link.run('STREAM FILE keybox/missing ""', "200 result=-1 endpos=0")
    task = asyncio.create_task(link.channel.is_channel_alive())
    assert await link.asterisk.command() == "CHANNEL STATUS"
    await link.asterisk.send("200 result=6")
    assert await task is True

    # A real hang-up: the reply, then Asterisk's HANGUP line, then 511 to CHANNEL STATUS.
    await link.run('STREAM FILE keybox/welcome ""', "200 result=-1 endpos=0", "HANGUP")
    task = asyncio.create_task(link.channel.is_channel_alive())
    assert await link.asterisk.command() == "CHANNEL STATUS"
    await link.asterisk.send(DEAD)
    assert await task is False
    assert link.channel.hung_up


async def test_channel_alive_is_false_for_minus_one(link: Link) -> None:
    task = asyncio.create_task(link.channel.is_channel_alive())
    assert await link.asterisk.command() == "CHANNEL STATUS"
    await link.asterisk.send("200 result=-1")

    assert await task is False


async def test_channel_alive_after_a_known_hang_up_sends_nothing(link: Link) -> None:
    with pytest.raises(ChannelHangupError):
        await link.run("ANSWER", DEAD)

    assert await link.channel.is_channel_alive() is False
    await assert_nothing_more_written(link)
