"""The identify route, an unknown route, the language menu, and classic AGI."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from support.line import CATALOG, Line, running_line, today

from ivr.flow.records import Outcome
from ivr.kimvoice.sandbox import update_code_for
from ivr.sim import ScriptedCaller, SoundLibrary, run_classic_agi
from ivr.tts import TtsCache


async def test_identify_a_found_key(line: Line) -> None:
    call = await line.call("123456#" "1" "9", route="identify")

    assert call.prompts == ["identify-enter-key-number", "identify-result-intro", "identify-menu",
                            "identify-result-intro", "identify-menu", "goodbye"]
    assert call.heard.spoken == ["Jane Agent", "Lakeside Realty"] * 2
    assert call.heard.said_digits == ["15555550123"] * 2
    assert call.record.outcome is Outcome.IDENTIFIED
    assert line.requests("GetKeyHolders") == 0


async def test_identify_unknown_key_then_another(line: Line) -> None:
    call = await line.call("99999#" "234567#" "2" "123456#" "9", route="identify")

    assert call.prompts[:3] == ["identify-enter-key-number", "unknown-key", "identify-enter-key-number"]
    assert call.heard.spoken == ["Omar Broker", "Harbor Homes", "Jane Agent", "Lakeside Realty"]
    assert call.record.outcome is Outcome.IDENTIFIED
    assert [b.result for b in call.record.backend] == ["ApiError 1002", "ok", "ok"]


async def test_unknown_route_is_logged_and_hung_up(line: Line) -> None:
    call = await line.call("", route="nosuchroute")
    assert call.heard.hung_up_by == "service"
    assert call.prompts == []
    assert call.record.outcome is Outcome.ERROR
    assert call.record.detail == "unknown route 'nosuchroute'"


async def test_route_with_a_query_suffix(line: Line) -> None:
    call = await line.call("123456#2580#19", query={"source": "qa"})
    assert call.record.outcome is Outcome.UPDATE_CODE_READ


async def test_language_menu_switches_the_rest_of_the_call(tmp_path: Path) -> None:
    async with running_line(tmp_path, languages=["en", "fr", "es"]) as line:
        call = await line.call("_" "2" "123456#2580#19")
    assert call.prompts[:5] == ["welcome", "choose-language", "choose-language", "choose-language",
                                "choose-language"]
    assert call.record.language == "fr"
    assert [e.value for e in call.heard.events if e.kind == "language"][-1] == "fr"
    assert call.record.outcome is Outcome.UPDATE_CODE_READ


async def test_the_same_happy_path_over_classic_agi(tmp_path: Path, line: Line) -> None:
    env = {**os.environ, "IVR_KIMVOICE_URL": str(line.settings.kimvoice_url), "IVR_DATA_DIR": str(tmp_path / "classic"),
           "IVR_LOG_FORMAT": "json"}
    sounds = SoundLibrary(CATALOG, TtsCache(tmp_path / "classic" / "tts"))
    result = await run_classic_agi([sys.executable, "-m", "ivr", "agi"], "keybox",
                                   caller=ScriptedCaller("123456#2580#19"), sounds=sounds, env=env)

    assert result.transcript.prompts == ["welcome", "enter-key-number", "enter-pin", "choose-code-type",
                                         "your-update-code-is", "after-code-menu", "goodbye"]
    assert result.transcript.said_digits == [update_code_for(123456, 5001, 5001, 1, today())]
    assert result.returncode == 0
    assert result.stderr is not None
    assert "agi_callerid" not in result.stderr and "2580" not in result.stderr
