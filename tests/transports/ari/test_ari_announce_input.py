"""`IVR_ARI_ANNOUNCE_INPUT`: the `IvrInput` user event is the simulator's need, not a real PBX's.

Off by default: a question over ARI then costs no ``POST /events/user/IvrInput``. The test lines
turn it on (the simulated caller types only once it has heard it).
"""

from __future__ import annotations

from pathlib import Path

from support.line import running_line

from ivr.settings import load_settings
from ivr.sim import SimulatedAri

INPUT_EVENT_PATH = "/ari/events/user/IvrInput"


def input_events(ari: SimulatedAri) -> int:
    return sum(1 for r in ari.requests if r.method == "POST" and r.path == INPUT_EVENT_PATH)


def test_it_is_off_by_default() -> None:
    assert load_settings().ari_announce_input is False


async def test_with_the_default_a_question_sends_no_input_event(tmp_path: Path) -> None:
    production = load_settings().ari_announce_input
    async with running_line(tmp_path, transport="ari", ari_announce_input=production) as line:
        call = await line.call("", hangup_on="enter-key-number")  # hangs up as the question plays
    assert "enter-key-number" in call.prompts, "the line asked its first question"
    assert input_events(line.ari) == 0


async def test_turned_on_each_question_is_announced(tmp_path: Path) -> None:
    async with running_line(tmp_path, transport="ari", ari_announce_input=True) as line:
        call = await line.call("123456#2580#19")
    assert call.record.outcome.value == "update_code_read"
    assert input_events(line.ari) == 4  # key number, PIN, code type, after-code menu
