"""`AriCall` and `AriApp` against the simulated ARI, one operation at a time (no call flow)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs
from support.line import CATALOG

from ivr.errors import ChannelHangupError
from ivr.flow.call import Entry
from ivr.sim import AriCallResult, Event, ScriptedCaller, SimulatedAri, SoundLibrary, place_ari_call
from ivr.transports.ari import AriApp, AriCall, AriError, AriRest

Handler = Callable[[AriCall], Awaitable[object]]


@asynccontextmanager
async def stasis(
    handler: Handler, *, playback_seconds: float = 0.0, password: str = "asterisk",
) -> AsyncIterator[tuple[SimulatedAri, AriApp]]:
    async with SimulatedAri(SoundLibrary(CATALOG), playback_seconds=playback_seconds) as sim:
        # the simulated caller types only once IvrInput says the line waits for keys
        app = AriApp(handler, sim.url, "asterisk", password, backoff=0.01, announce_input=True)
        await app.start()
        try:
            yield sim, app
        finally:
            await app.drain(1)


async def place(sim: SimulatedAri, app: AriApp, caller: ScriptedCaller, route: str | None = "keybox",
                **kwargs: Any) -> AriCallResult:
    await app.wait_connected(5)
    result = await place_ari_call(sim, route, caller=caller, timeout=10, **kwargs)
    await app.wait_call(result.channel_id, 5)
    return result


class PressingCaller(ScriptedCaller):
    """Presses `keys` as soon as a sound starts playing (`prompt` id, or `digits`)."""

    def __init__(self, sim: SimulatedAri, during: str, keys: str, script: str = "") -> None:
        super().__init__(script)
        self._sim, self._during, self._keys = sim, during, keys

    def observe(self, event: Event) -> None:
        if self._during in (event.value, event.kind):
            channel = list(self._sim.channels.values())[-1]
            asyncio.get_running_loop().create_task(channel.press(self._keys))
            self._during = "\0"


# -- keys --------------------------------------------------------------------------------------


async def test_keys_during_a_prompt_stop_it_and_count() -> None:
    seen: list[object] = []

    async def handler(call: AriCall) -> None:
        seen.append(await call.read_digits("keybox/enter-pin", 1000, 4))

    async with stasis(handler, playback_seconds=2.0) as (sim, app):
        result = await place(sim, app, PressingCaller(sim, "enter-pin", "12#"))
    assert seen == [Entry("12", False)]
    assert sim.stopped_playbacks == ["sound:keybox/enter-pin"]
    assert result.duration < 1.5


async def test_an_escape_key_stops_a_playback_and_other_keys_are_ignored() -> None:
    seen: list[object] = []

    async def handler(call: AriCall) -> None:
        seen.append(await call.play("keybox/choose-pod", "12"))
        seen.append(await call.play("keybox/goodbye"))  # no escape: keys are not even collected

    async with stasis(handler, playback_seconds=0.5) as (sim, app):
        await place(sim, app, PressingCaller(sim, "choose-pod", "52"))
    assert seen == ["2", ""]
    assert sim.stopped_playbacks == ["sound:keybox/choose-pod"]


async def test_an_escape_key_stops_the_digits() -> None:
    seen: list[object] = []

    async def handler(call: AriCall) -> None:
        seen.append(await call.say_digits("1234", "5"))

    async with stasis(handler, playback_seconds=0.3) as (sim, app):
        result = await place(sim, app, PressingCaller(sim, "digits", "5"))
    assert seen == ["5"]
    assert sim.stopped_playbacks == ["sound:digits/1"]  # a list of sound: media can be stopped
    assert result.transcript.said_digits == ["1234"]


async def test_entries_end_at_hash_at_max_digits_or_when_the_time_runs_out() -> None:
    seen: list[object] = []

    async def handler(call: AriCall) -> None:
        for _ in range(4):
            seen.append(await call.read_digits("keybox/enter-pin", 200, 4))

    async with stasis(handler) as (sim, app):
        result = await place(sim, app, ScriptedCaller("#" "1234" "_" "12_"))
    assert seen == [Entry("", False), Entry("1234", False), Entry("", True), Entry("12", True)]
    assert [e.value for e in result.transcript.events if e.kind == "pressed"] == ["#", "1234", "12"]


async def test_wait_for_digit_takes_one_key_or_times_out() -> None:
    seen: list[object] = []

    async def handler(call: AriCall) -> None:
        seen.append(await call.wait_for_digit(200))
        seen.append(await call.wait_for_digit(200))

    async with stasis(handler) as (sim, app):
        await place(sim, app, ScriptedCaller("7" "_"))
    assert seen == ["7", ""]


# -- hang-ups and missing sounds ---------------------------------------------------------------


async def test_a_hang_up_fails_the_pending_and_every_later_operation() -> None:
    seen: list[object] = []

    async def handler(call: AriCall) -> None:
        for operation in (lambda: call.read_digits("keybox/enter-pin", 1000, 4), lambda: call.play("keybox/goodbye"),
                          lambda: call.set_variable("IVR_OUTCOME", "x")):
            try:
                await operation()
            except ChannelHangupError:
                seen.append("hung up")
        assert call.hung_up

    async with stasis(handler) as (sim, app):
        result = await place(sim, app, ScriptedCaller("12!"))
    assert seen == ["hung up"] * 3
    assert result.ended_by == "caller"
    assert result.requests_after_end == 0  # nothing was sent once the caller was known gone


async def test_a_hang_up_during_a_prompt_is_not_a_missing_sound() -> None:
    seen: list[object] = []

    async def handler(call: AriCall) -> None:
        try:
            await call.play("keybox/welcome")
        except ChannelHangupError:
            seen.append("hung up")

    async with stasis(handler) as (sim, app):
        with capture_logs() as logs:
            await place(sim, app, ScriptedCaller(hangup_on="welcome"))
    assert seen == ["hung up"]
    assert "ari.sound_missing" not in [entry["event"] for entry in logs]



async def test_wait_hangup_returns_when_the_caller_hangs_up_between_operations() -> None:
    """As while the flow waits for a backend: no operation is pending, the events say it."""
    seen: list[object] = []

    async def handler(call: AriCall) -> None:
        await call.play("keybox/welcome")
        await asyncio.wait_for(call.wait_hangup(), 5)
        seen.append(call.hung_up)
        await asyncio.wait_for(call.wait_hangup(), 5)  # and at once after that

    async with stasis(handler) as (sim, app):
        result = await place(sim, app, ScriptedCaller(hangup_on="welcome", hangup_delay=0.05))
    assert seen == [True]
    assert result.transcript.prompts == ["welcome"]
    assert (result.ended_by, result.requests_after_end) == ("caller", 0)

async def test_a_missing_sound_is_logged_and_skipped() -> None:
    seen: list[object] = []

    async def handler(call: AriCall) -> None:
        seen.append(await call.play("keybox/no-such-prompt", "1"))
        seen.append(await call.read_digits("keybox/no-such-question", 1000, 4))
        seen.append(await call.play("keybox/goodbye"))

    async with stasis(handler) as (sim, app):
        with capture_logs() as logs:
            result = await place(sim, app, ScriptedCaller("1234#"))
    assert seen == ["", Entry("", True), ""]
    assert result.transcript.missing == ["keybox/no-such-prompt", "keybox/no-such-question"]
    assert result.transcript.prompts == ["goodbye"]
    assert [(e["sound"], e["language"]) for e in logs if e["event"] == "ari.sound_missing"] == [
        ("keybox/no-such-prompt", "en"), ("keybox/no-such-question", "en")]


# -- the end of a call ---------------------------------------------------------------------------


async def test_transfer_continues_at_the_operator_context() -> None:
    seen: list[object] = []

    async def handler(call: AriCall) -> None:
        with pytest.raises(AriError):
            await call.transfer("")
        await call.set_variable("IVR_OUTCOME", "operator_requested")
        await call.transfer("Queue(keybox-agents)")
        seen.append(call.transferred)

    async with stasis(handler) as (sim, app):
        result = await place(sim, app, ScriptedCaller())
    assert seen == [True]
    assert result.ended_by == "transfer"
    assert result.transcript.transferred_to == "Queue(keybox-agents)"
    assert result.transcript.variables == {"IVR_OUTCOME": "operator_requested", "IVR_TRANSFER": "Queue(keybox-agents)"}
    assert result.requests_after_end == 0  # no hang-up after the transfer


async def test_a_channel_the_flow_left_in_stasis_is_hung_up() -> None:
    async def handler(call: AriCall) -> None:
        await call.answer()

    async with stasis(handler) as (sim, app):
        result = await place(sim, app, ScriptedCaller())
    assert result.ended_by == "service"
    assert [e.kind for e in result.transcript.events] == ["answer", "hangup"]


async def test_route_arguments_caller_and_language_come_from_stasis_start() -> None:
    seen: list[object] = []

    async def handler(call: AriCall) -> None:
        seen.append((call.route, call.variables, call.caller_id, call.language, call.call_id))
        await call.set_language("es")
        seen.append(call.language)
        await call.hangup()

    async with stasis(handler) as (sim, app):
        first = await place(sim, app, ScriptedCaller(), "announce?job=42", args=("extra",), language="fr")
        second = await place(sim, app, ScriptedCaller(), None, caller_id=None)
    assert seen[0] == ("announce", {"job": "42", "arg2": "extra"}, "+15555550100", "fr", first.channel_id)
    assert seen[1] == "es"
    assert seen[2] == ("keybox", {}, "unknown", "en", second.channel_id)
    assert first.transcript.variables == {"CHANNEL(language)": "es"}
    assert first.ended_by == "service"


async def test_a_call_that_comes_while_draining_goes_on_in_the_dialplan() -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def handler(call: AriCall) -> None:
        started.set()
        await release.wait()
        await call.hangup()

    async with stasis(handler) as (sim, app):
        await app.wait_connected(5)
        first = asyncio.create_task(place_ari_call(sim, "keybox", caller=ScriptedCaller(), timeout=10))
        await started.wait()
        drain = asyncio.create_task(app.drain(5))
        await asyncio.sleep(0)  # the drain has begun: no new calls
        second = await place_ari_call(sim, "keybox", caller=ScriptedCaller(), timeout=10)
        release.set()
        await drain
        assert (await first).ended_by == "service"
    assert second.ended_by == "dialplan"


async def test_a_wrong_password_is_refused_and_never_logged() -> None:
    async def handler(call: AriCall) -> None:
        raise AssertionError("no call should reach the handler")

    with capture_logs() as logs:
        async with stasis(handler, password="s3cret-wrong") as (sim, app):
            await sim.wait_attempts(2, timeout=5)
            assert not app.connected
    assert {(e["event"], e.get("status")) for e in logs if e["event"] == "ari.refused"} == {("ari.refused", 401)}
    assert "s3cret-wrong" not in repr(logs)


# -- REST errors ---------------------------------------------------------------------------------


async def test_rest_answers_are_mapped_to_the_errors_the_flow_knows() -> None:
    async def asterisk(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/slow/answer"):
            await asyncio.sleep(1)
        if path.startswith("/ari/channels/gone"):
            return httpx.Response(404, json={"message": "Channel not found"})
        if path.startswith("/ari/channels/left"):
            return httpx.Response(409, json={"message": "Channel not in Stasis application"})
        if path.startswith("/ari/playbacks/"):
            return httpx.Response(500, json={"message": "Could not stop playback"})
        return httpx.Response(500, json={"message": "Internal Server Error"})

    rest = AriRest("http://asterisk:8088", "u", "p", timeout=0.1, transport=httpx.MockTransport(asterisk))
    try:
        with pytest.raises(ChannelHangupError):
            await rest.answer("gone")
        with pytest.raises(ChannelHangupError):
            await rest.play("left", "p1", "sound:keybox/welcome", "en")
        assert await rest.get_channel("gone") is None
        await rest.hangup("gone")  # a channel gone already is hung up
        with pytest.raises(AriError) as refused:
            await rest.set_variable("up", "IVR_OUTCOME", "x")
        assert refused.value.status == 500
        with pytest.raises(AriError) as late:
            await rest.answer("slow")
        assert late.value.status is None
        assert await rest.stop_playback("p1") is False  # ARI cannot stop, e.g., digits: media
    finally:
        await rest.aclose()

    unreachable = AriRest("http://127.0.0.1:9", "u", "p", timeout=1.0)
    try:
        with pytest.raises(AriError):
            await unreachable.answer("c1")
    finally:
        await unreachable.aclose()
