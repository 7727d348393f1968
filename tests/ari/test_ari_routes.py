"""Routes, arguments, languages and missing sounds over ARI."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from structlog.testing import capture_logs
from support.line import CATALOG, today

from ivr.flow.records import Outcome
from ivr.kimvoice.sandbox import update_code_for
from ivr.sim import SoundLibrary
from ivr.tts import TtsCache

if TYPE_CHECKING:
    from tests.ari.conftest import AriLine, MakeAriLine

pytestmark = pytest.mark.asyncio(loop_scope="module")


class WithoutSounds(SoundLibrary):
    """The simulated Asterisk's sounds, less a few."""

    def __init__(self, tts_dir: Path, missing: set[str]) -> None:
        super().__init__(CATALOG, TtsCache(tts_dir))
        self.missing_sounds = missing

    def exists(self, name: str, language: str) -> bool:
        return name not in self.missing_sounds and super().exists(name, language)


async def test_identify_a_found_key(ari_line: AriLine) -> None:
    call = await ari_line.call("123456#" "1" "9", route="identify")

    assert call.prompts == ["identify-enter-key-number", "identify-result-intro", "identify-menu",
                            "identify-result-intro", "identify-menu", "goodbye"]
    assert call.heard.spoken == ["Jane Agent", "Lakeside Realty"] * 2
    assert call.heard.said_digits == ["15555550123"] * 2
    assert call.record.route == "identify"
    assert call.record.outcome is Outcome.IDENTIFIED


async def test_identify_unknown_key_then_another(ari_line: AriLine) -> None:
    call = await ari_line.call("99999#" "234567#" "2" "123456#" "9", route="identify")

    assert call.prompts[:3] == ["identify-enter-key-number", "unknown-key", "identify-enter-key-number"]
    assert call.heard.spoken == ["Omar Broker", "Harbor Homes", "Jane Agent", "Lakeside Realty"]
    assert [b.result for b in call.record.backend] == ["ApiError 1002", "ok", "ok"]


async def test_stasis_without_a_route_is_the_keybox_route(ari_line: AriLine) -> None:
    call = await ari_line.call("123456#2580#19", route=None)
    assert call.record.route == "keybox"
    assert call.record.outcome is Outcome.UPDATE_CODE_READ


async def test_unknown_route_is_logged_and_hung_up(ari_line: AriLine) -> None:
    call = await ari_line.call("", route="nosuchroute")
    assert call.heard.hung_up_by == "service"
    assert call.prompts == []
    assert call.record.outcome is Outcome.ERROR
    assert call.record.detail == "unknown route 'nosuchroute'"


async def test_the_route_query_reaches_the_flow(ari_line: AriLine) -> None:
    # Stasis(keybox,announce?job=nojob): the announce route reads `job` from the query.
    call = await ari_line.call("", route="announce?job=nojob")
    assert call.record.route == "announce"
    assert call.record.detail == "no announcement for job 'nojob'"
    assert call.heard.hung_up_by == "service"


async def test_the_channel_language_is_the_call_language(make_ari_line: MakeAriLine) -> None:
    async with make_ari_line(languages=["fr"]) as line:
        call = await line.call("123456#2580#19", language="fr")
    assert call.record.language == "fr"
    assert "language" not in [e.kind for e in call.heard.events]  # it was right from the start
    assert call.heard.missing == []  # every prompt was played in French
    assert call.record.outcome is Outcome.UPDATE_CODE_READ


async def test_language_menu_switches_the_rest_of_the_call(make_ari_line: MakeAriLine) -> None:
    async with make_ari_line(languages=["en", "fr", "es"]) as line:
        call = await line.call("2" "123456#2580#19")
    assert call.prompts[:2] == ["welcome", "choose-language"]
    assert call.heard.variables["CHANNEL(language)"] == "fr"
    assert [e.value for e in call.heard.events if e.kind == "language"][-1] == "fr"
    assert call.record.language == "fr"
    assert call.heard.missing == []  # every later prompt was found in French
    assert call.record.outcome is Outcome.UPDATE_CODE_READ


async def test_a_missing_sound_is_logged_and_the_call_goes_on(make_ari_line: MakeAriLine, tmp_path: Path) -> None:
    async with make_ari_line() as line:
        line.ari.sounds = WithoutSounds(line.settings.data_dir / "tts", {"keybox/welcome"})
        with capture_logs() as logs:
            call = await line.call("123456#2580#19")
    assert call.heard.missing == ["keybox/welcome"]
    assert call.prompts[:2] == ["enter-key-number", "enter-pin"]
    assert call.heard.said_digits == [update_code_for(123456, 5001, 5001, 1, today())]
    assert call.record.outcome is Outcome.UPDATE_CODE_READ
    missing = [entry for entry in logs if entry["event"] == "ari.sound_missing"]
    assert missing == [{"event": "ari.sound_missing", "sound": "keybox/welcome", "language": "en",
                        "log_level": "error"}]


async def test_a_missing_question_counts_as_no_answer(make_ari_line: MakeAriLine) -> None:
    # As over AGI: GET DATA with a missing prompt returns at once with nothing typed.
    async with make_ari_line() as line:
        line.ari.sounds = WithoutSounds(line.settings.data_dir / "tts", {"keybox/enter-pin"})
        call = await line.call("123456#2580#19")
    assert call.heard.missing == ["keybox/enter-pin"] * 3
    assert call.prompts[-2:] == ["too-many-attempts", "transferring"]
    assert call.record.outcome is Outcome.TRANSFERRED
