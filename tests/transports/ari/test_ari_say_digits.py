"""`AriCall.say_digits` over the simulated ARI: one playback of a media list, one sound per digit.

Never ``digits:<code>``: Asterisk's res_stasis_playback logs a playback's media when it fails
(a hang-up during it) or is stopped or cancelled, and ``digits:<code>`` would put the whole code
in its console and messages log. The simulated ARI keeps those log lines (`SimulatedAri.log`),
every request (`requests`) and the media list of each play (`play_media`).
"""

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
from ivr.sim import AriCallResult, Event, ScriptedCaller, SimulatedAri, SoundLibrary, place_ari_call
from ivr.transports.ari import AriApp, AriCall, AriRest
from ivr.transports.ari._call import digit_sounds

CODE = "4384341"
CODE_SOUNDS = ["sound:digits/4", "sound:digits/3", "sound:digits/8", "sound:digits/4", "sound:digits/3",
               "sound:digits/4", "sound:digits/1"]

Handler = Callable[[AriCall], Awaitable[object]]


@asynccontextmanager
async def stasis(handler: Handler, *, playback_seconds: float = 0.0) -> AsyncIterator[tuple[SimulatedAri, AriApp]]:
    async with SimulatedAri(SoundLibrary(CATALOG), playback_seconds=playback_seconds) as sim:
        app = AriApp(handler, sim.url, "asterisk", "asterisk", backoff=0.01, announce_input=True)  # for the caller
        await app.start()
        try:
            yield sim, app
        finally:
            await app.drain(1)


async def place(sim: SimulatedAri, app: AriApp, caller: ScriptedCaller, **kwargs: Any) -> AriCallResult:
    await app.wait_connected(5)
    kwargs.setdefault("answered", True)
    result = await place_ari_call(sim, "keybox", caller=caller, timeout=10, **kwargs)
    await app.wait_call(result.channel_id, 5)
    return result


def keep_events(call: AriCall) -> list[dict[str, Any]]:
    """The events ARI hands `call` from now on (they still reach it)."""
    events: list[dict[str, Any]] = []
    handle = call.handle_event

    def handle_and_keep(event: Any) -> None:
        events.append(dict(event))
        handle(event)

    call.handle_event = handle_and_keep  # type: ignore[method-assign]
    return events


def playback_events(events: list[dict[str, Any]]) -> list[tuple[str, str, str | None, str]]:
    return [(e["type"], e["playback"]["media_uri"], e["playback"].get("next_media_uri"), e["playback"]["state"])
            for e in events if str(e["type"]).startswith("Playback")]


async def until(ready: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not ready():
            await asyncio.sleep(0.01)


class HangingUpOn(ScriptedCaller):
    """Hangs up while the sound `sound` (say ``digits/8``) plays."""

    def __init__(self, sound: str) -> None:
        super().__init__()
        self._sound = sound

    def hangup_on(self, sound: str) -> bool:
        return sound == self._sound


class PressingOnDigits(ScriptedCaller):
    """Presses `keys` as soon as the digits start."""

    def __init__(self, sim: SimulatedAri, keys: str) -> None:
        super().__init__()
        self._sim, self._keys, self._pressed = sim, keys, False

    def observe(self, event: Event) -> None:
        if event.kind == "digits" and not self._pressed:
            self._pressed = True
            channel = list(self._sim.channels.values())[-1]
            asyncio.get_running_loop().create_task(channel.press(self._keys))


# -- the request ---------------------------------------------------------------------------------


async def test_say_digits_is_one_play_request_of_per_digit_sounds() -> None:
    seen: list[object] = []
    events: list[dict[str, Any]] = []

    async def handler(call: AriCall) -> None:
        kept = keep_events(call)
        seen.append(await call.say_digits(CODE))
        events.extend(kept)

    async with stasis(handler) as (sim, app):
        result = await place(sim, app, ScriptedCaller())
    assert seen == [""]
    assert sim.play_media == [CODE_SOUNDS]
    plays = [r for r in sim.requests if "/play" in r.path]
    assert len(plays) == 1
    assert plays[0].method == "POST"
    assert plays[0].query == f"media={','.join(CODE_SOUNDS)}&lang=en"  # ONE media parameter
    for request in sim.requests:
        assert CODE not in request.target and CODE.encode() not in request.body
        assert "digits:" not in request.target and b"digits:" not in request.body
    assert result.transcript.said_digits == [CODE]  # one transcript event, as digits: was
    assert result.transcript.notes == []
    assert sim.log == []  # a playback that plays to its end logs nothing
    # As res_stasis_playback plays a media list: each media starts; each but the last continues.
    expected: list[tuple[str, str, str | None, str]] = []
    for index, media in enumerate(CODE_SOUNDS):
        following = CODE_SOUNDS[index + 1] if index + 1 < len(CODE_SOUNDS) else None
        expected.append(("PlaybackStarted", media, following, "playing"))
        expected.append(("PlaybackContinuing", media, following, "continuing") if following
                        else ("PlaybackFinished", media, None, "done"))
    assert playback_events(events) == expected


async def test_star_and_pound_are_the_star_and_pound_sounds() -> None:
    assert digit_sounds("0*9#") == ["sound:digits/0", "sound:digits/star", "sound:digits/9", "sound:digits/pound"]

    async def handler(call: AriCall) -> None:
        await call.say_digits("*0#")

    async with stasis(handler) as (sim, app):
        result = await place(sim, app, ScriptedCaller())
    assert sim.play_media == [["sound:digits/star", "sound:digits/0", "sound:digits/pound"]]
    assert result.transcript.said_digits == ["*0#"]


async def test_the_rest_client_sends_a_list_as_one_comma_separated_media() -> None:
    sent: list[httpx.Request] = []

    async def asterisk(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(201, json={})

    rest = AriRest("http://asterisk:8088", "u", "p", transport=httpx.MockTransport(asterisk))
    try:
        await rest.play("c1", "p1", ["sound:digits/1", "sound:digits/star"], "fr")
        await rest.play("c1", "p2", "sound:keybox/welcome", None)
        for bad in ([], ["sound:a,sound:b"], ["sound:a", ""], ["sound:digits/1"] * 128):
            with pytest.raises(ValueError):
                await rest.play("c1", "p3", bad, "en")
    finally:
        await rest.aclose()
    assert [r.url.params.get_list("media") for r in sent] == [["sound:digits/1,sound:digits/star"],
                                                              ["sound:keybox/welcome"]]
    assert [r.url.params.get("lang") for r in sent] == ["fr", None]


# -- stopping and hanging up ---------------------------------------------------------------------


async def test_an_escape_key_during_the_digits_stops_the_playback() -> None:
    seen: list[str] = []
    took: list[float] = []

    async def handler(call: AriCall) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        seen.append(await call.say_digits(CODE, "9"))
        took.append(loop.time() - started)

    async with stasis(handler, playback_seconds=3.0) as (sim, app):
        result = await place(sim, app, PressingOnDigits(sim, "9"))
    assert seen == ["9"]
    assert took[0] < 1.0  # neither the 3 s of the code nor STOP_WAIT: its PlaybackFinished came
    assert sim.stopped_playbacks == ["sound:digits/4"]
    assert sim.log == [f"NOTICE: {result.channel_id}: Playback stopped for sound:digits/4"]
    assert result.transcript.said_digits == [CODE]


async def test_a_key_that_is_not_an_escape_lets_the_digits_play_on() -> None:
    seen: list[object] = []

    async def handler(call: AriCall) -> None:
        seen.append(await call.say_digits(CODE, "#"))

    async with stasis(handler, playback_seconds=0.3) as (sim, app):
        await place(sim, app, PressingOnDigits(sim, "5"))
    assert seen == [""]
    assert sim.stopped_playbacks == []


async def test_a_hang_up_during_the_digits_logs_one_digit_sound_not_the_code() -> None:
    seen: list[object] = []
    events: list[dict[str, Any]] = []

    async def handler(call: AriCall) -> None:
        kept = keep_events(call)
        try:
            await call.say_digits(CODE)
        except ChannelHangupError:
            seen.append("hung up")
        events.extend(kept)

    async with stasis(handler) as (sim, app):
        with capture_logs() as logs:
            result = await place(sim, app, HangingUpOn("digits/8"))
    assert seen == ["hung up"]
    assert sim.log == [f"WARNING: {result.channel_id}: Playback failed for sound:digits/8"]
    assert not any(CODE in line for line in sim.log)
    assert "ari.sound_missing" not in [entry["event"] for entry in logs]
    assert CODE not in repr(logs)
    assert result.transcript.said_digits == [CODE]  # the transcript is as it was with digits:
    assert result.ended_by == "caller"
    assert result.requests_after_end == 0
    assert playback_events(events)[-2:] == [("PlaybackStarted", "sound:digits/8", "sound:digits/4", "playing"),
                                            ("PlaybackFinished", "sound:digits/8", "sound:digits/4", "failed")]


async def test_hang_up_on_digits_still_ends_the_call_at_the_first_digit() -> None:
    async def handler(call: AriCall) -> None:
        await call.say_digits(CODE)

    async with stasis(handler) as (sim, app):
        result = await place(sim, app, ScriptedCaller(hangup_on="digits"))
    assert result.ended_by == "caller"
    assert sim.log == [f"WARNING: {result.channel_id}: Playback failed for sound:digits/4"]


# -- the simulated ARI plays lists as Asterisk does ------------------------------------------------


async def test_the_simulated_ari_plays_lists_as_asterisk_does() -> None:
    """Raw play requests: a missing sound inside a list is skipped, a missing last one fails the
    playback, a repeated media parameter counts by its last value only."""
    finished: dict[str, str] = {}

    async def handler(call: AriCall) -> None:
        events = keep_events(call)
        async with httpx.AsyncClient(base_url=sim.url + "/ari/", auth=("asterisk", "asterisk")) as http:
            plays = {
                "inside": "media=sound:keybox/welcome,sound:keybox/no-such,sound:keybox/goodbye",
                "last": "media=sound:keybox/goodbye,sound:keybox/no-such",
                "repeated": "media=sound:digits/1&media=sound:digits/2",
            }
            for name, query in plays.items():
                response = await http.post(f"channels/{call.call_id}/play/{name}?{query}")
                assert response.status_code == 201, response.text
                await until(lambda n=name: any(  # type: ignore[misc]
                    e["type"] == "PlaybackFinished" and e["playback"]["id"] == n for e in events))
            for query in ("", "media=", "media=sound:keybox/welcome,,sound:keybox/goodbye"):
                response = await http.post(f"channels/{call.call_id}/play?{query}")
                assert response.status_code == 500
            response = await http.post(f"channels/{call.call_id}/play?media=" + ",".join(["sound:digits/1"] * 128))
            assert response.status_code == 400
        finished.update({e["playback"]["id"]: e["playback"]["state"] for e in events
                         if e["type"] == "PlaybackFinished"})

    async with stasis(handler) as (sim, app):
        result = await place(sim, app, ScriptedCaller())
    assert finished == {"inside": "done", "last": "failed", "repeated": "done"}
    assert sim.play_media == [["sound:keybox/welcome", "sound:keybox/no-such", "sound:keybox/goodbye"],
                              ["sound:keybox/goodbye", "sound:keybox/no-such"], ["sound:digits/2"]]
    assert result.transcript.prompts == ["welcome", "goodbye", "goodbye"]
    assert result.transcript.missing == ["keybox/no-such", "keybox/no-such"]
    assert result.transcript.said_digits == ["2"]
    assert any("media 2 times" in note for note in result.transcript.notes)
    assert sim.log == [f"WARNING: {result.channel_id}: Playback failed for sound:keybox/no-such"] * 2
