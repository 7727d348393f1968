"""The identify route, an unknown route, route arguments, languages and missing sounds."""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs
from support.line import CATALOG, Line, MakeLine, today

from ivr.backends.kimvoice.sandbox import update_code_for
from ivr.records import Outcome
from ivr.sim import SoundLibrary
from ivr.tts import TtsCache


class WithoutSounds(SoundLibrary):
    """The simulated Asterisk's sounds, less a few."""

    def __init__(self, tts_dir: Path, missing: set[str]) -> None:
        super().__init__(CATALOG, TtsCache(tts_dir))
        self.missing_sounds = missing

    def exists(self, name: str, language: str) -> bool:
        return name not in self.missing_sounds and super().exists(name, language)


async def test_identify_a_found_key(line: Line) -> None:
    call = await line.call("123456#" "1" "9", route="identify")

    assert call.prompts == ["identify-enter-key-number", "identify-result-intro", "identify-menu",
                            "identify-result-intro", "identify-menu", "goodbye"]
    assert call.heard.spoken == ["Jane Agent", "Lakeside Realty"] * 2
    assert call.heard.said_digits == ["15555550123"] * 2
    assert call.record.route == "identify"
    assert call.record.outcome is Outcome.IDENTIFIED
    assert line.requests("GetKeyHolders") == 0


async def test_identify_unknown_key_then_another(line: Line) -> None:
    call = await line.call("99999#" "234567#" "2" "123456#" "9", route="identify")

    assert call.prompts[:3] == ["identify-enter-key-number", "unknown-key", "identify-enter-key-number"]
    assert call.heard.spoken == ["Omar Broker", "Harbor Homes", "Jane Agent", "Lakeside Realty"]
    assert call.record.outcome is Outcome.IDENTIFIED
    assert [b.result for b in call.record.backend] == ["ApiError 1002", "ok", "ok"]


async def test_unknown_route_is_heard_then_an_agent(line: Line) -> None:
    # A dialplan naming a route the service lacks: the caller hears why, never silence.
    call = await line.call("", route="nosuchroute")
    assert call.prompts == ["system-unavailable", "transferring"]
    assert call.heard.variables["IVR_OUTCOME"] == "error"
    assert call.record.outcome is Outcome.ERROR  # a dialplan to fix, whoever took the call
    assert call.record.detail == "unknown route 'nosuchroute'"


async def test_unknown_route_without_an_operator_says_goodbye(make_line: MakeLine) -> None:
    async with make_line(operator="") as line:
        call = await line.call("", route="nosuchroute")
    assert call.prompts == ["system-unavailable", "goodbye"]
    assert call.heard.hung_up_by == "service"
    assert call.record.outcome is Outcome.ERROR
    assert call.record.detail == "unknown route 'nosuchroute'"


async def test_route_with_a_query_suffix(line: Line) -> None:
    call = await line.call("123456#2580#19", query={"source": "qa"})
    assert call.record.outcome is Outcome.UPDATE_CODE_READ


async def test_the_route_query_reaches_the_flow(line: Line) -> None:
    # agi://…/announce?job=nojob, Stasis(keybox,announce?job=nojob): the announce route reads `job`.
    call = await line.call("", route="announce", query={"job": "nojob"})
    assert call.record.route == "announce"
    assert call.record.detail == "no announcement for job 'nojob'"
    assert call.heard.hung_up_by == "service"


async def test_the_channel_language_is_the_call_language(make_line: MakeLine) -> None:
    async with make_line(languages=["fr"]) as line:
        call = await line.call("123456#2580#19", language="fr")
    assert call.record.language == "fr"
    assert "language" not in [e.kind for e in call.heard.events]  # it was right from the start
    assert call.heard.missing == []  # every prompt was played in French
    assert call.record.outcome is Outcome.UPDATE_CODE_READ


async def test_language_menu_switches_the_rest_of_the_call(make_line: MakeLine) -> None:
    async with make_line(languages=["en", "fr", "es"]) as line:
        call = await line.call("_" "2" "123456#2580#19")
    assert call.prompts[:5] == ["welcome", "choose-language", "choose-language", "choose-language",
                                "choose-language"]
    if line.transport != "pivot":  # Kazoo has no channel language to set: our sounds' URLs name it
        assert call.heard.variables["CHANNEL(language)"] == "fr"
    assert [e.value for e in call.heard.events if e.kind == "language"][-1] == "fr"
    assert call.record.language == "fr"
    assert call.heard.missing == []  # every later prompt was found in French
    assert call.record.outcome is Outcome.UPDATE_CODE_READ


async def test_a_missing_sound_is_logged_and_the_call_goes_on(make_line: MakeLine) -> None:
    async with make_line() as line:
        line.sounds = WithoutSounds(line.settings.data_dir / "tts", {"keybox/welcome"})
        with capture_logs() as logs:
            call = await line.call("123456#2580#19")
    assert call.heard.missing == ["keybox/welcome"]
    assert call.prompts[:2] == ["enter-key-number", "enter-pin"]
    assert call.heard.said_digits == [update_code_for(123456, 5001, 5001, 1, today())]
    assert call.record.outcome is Outcome.UPDATE_CODE_READ
    missing = [entry for entry in logs if entry["event"] == f"{line.transport}.sound_missing"]
    if line.transport == "pivot":
        # Kazoo fetches the sound from our /media and tells us nothing when it cannot play it.
        assert missing == []
    else:
        assert missing == [{"event": f"{line.transport}.sound_missing", "sound": "keybox/welcome",
                            "language": "en", "log_level": "error"}]


async def test_a_missing_question_counts_as_no_answer(make_line: MakeLine) -> None:
    # GET DATA with a missing prompt returns at once with nothing typed, over ARI as over AGI.
    async with make_line() as line:
        line.sounds = WithoutSounds(line.settings.data_dir / "tts", {"keybox/enter-pin"})
        call = await line.call("123456#2580#19")
    if line.transport == "pivot":
        # Kazoo's `play` fails on its own and `collect_dtmf` still runs: the caller is asked all the same.
        assert call.heard.missing == ["keybox/enter-pin"]
        assert call.record.outcome is Outcome.UPDATE_CODE_READ
    else:
        assert call.heard.missing == ["keybox/enter-pin"] * 3
        assert call.prompts[-2:] == ["too-many-attempts", "transferring"]
        assert call.record.outcome is Outcome.TRANSFERRED
