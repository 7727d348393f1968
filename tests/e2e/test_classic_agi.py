"""Classic AGI (a program per call, on stdin/stdout): FastAGI's and ARI's branch tests do not apply."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from support.line import CATALOG, running_line, today

from ivr.backends.kimvoice.sandbox import update_code_for
from ivr.sim import ScriptedCaller, SoundLibrary, run_classic_agi
from ivr.tts import TtsCache


async def test_the_same_happy_path_over_classic_agi(tmp_path: Path) -> None:
    async with running_line(tmp_path / "line") as line:  # for its sandbox
        env = {**os.environ, "IVR_KIMVOICE_URL": str(line.settings.kimvoice_url),
               "IVR_DATA_DIR": str(tmp_path / "classic"), "IVR_LOG_FORMAT": "json"}
        sounds = SoundLibrary(CATALOG, TtsCache(tmp_path / "classic" / "tts"))
        result = await run_classic_agi([sys.executable, "-m", "ivr", "agi"], "keybox",
                                       caller=ScriptedCaller("123456#2580#19"), sounds=sounds, env=env)

    assert result.transcript.prompts == ["welcome", "enter-key-number", "enter-pin", "choose-code-type",
                                         "your-update-code-is", "after-code-menu", "goodbye"]
    assert result.transcript.said_digits == [update_code_for(123456, 5001, 5001, 1, today())]
    assert result.returncode == 0
    assert result.stderr is not None
    assert "agi_callerid" not in result.stderr and "2580" not in result.stderr
