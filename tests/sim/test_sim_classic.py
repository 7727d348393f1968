"""Classic AGI: the simulator runs a program and talks to it over its stdin and stdout."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import pytest

from ivr.sim import DEAD_CHANNEL, ScriptedCaller, SoundLibrary, run_classic_agi

# A minimal classic AGI program: reads the environment, sends the commands it is given (JSON in
# SIM_COMMANDS), reads each reply, then reports everything on stderr and exits with status 3.
PROGRAM = r"""
import json, os, sys, time

env = {}
for line in iter(sys.stdin.readline, "\n"):
    key, _, value = line.rstrip("\n").partition(": ")
    env[key] = value
replies = []
for command in json.loads(os.environ["SIM_COMMANDS"]):
    sys.stdout.write(command + "\n")
    sys.stdout.flush()
    lines = [sys.stdin.readline().rstrip("\n")]
    while lines[0].startswith("520-") and not lines[-1].startswith("520 "):
        lines.append(sys.stdin.readline().rstrip("\n"))
    replies.append("\n".join(lines))
json.dump({"argv": sys.argv[1:], "env": env, "replies": replies, "agi_dir": os.environ.get("AST_AGI_DIR")}, sys.stderr)
sys.stderr.flush()  # stderr to a pipe is line-buffered: the report must be out before a kill
if os.environ.get("SIM_LINGER"):
    time.sleep(30)
sys.exit(3)
"""


@pytest.fixture
def program(tmp_path: Path) -> list[str]:
    path = tmp_path / "keybox_agi.py"
    path.write_text(PROGRAM)
    return [sys.executable, str(path)]


async def test_classic_session(program: list[str], sounds: SoundLibrary) -> None:
    commands = [
        "ANSWER",
        'STREAM FILE keybox/welcome ""',
        "GET DATA keybox/enter-key-number 6000 10",
        "GET DATA keybox/enter-pin 6000 4",
        "CHANNEL STATUS",
        "GET DATA",
    ]
    result = await run_classic_agi(
        program,
        "identify",
        caller=ScriptedCaller("123456#!"),
        sounds=sounds,
        args=["x=1"],
        env={"SIM_COMMANDS": json.dumps(commands)},
        variables={"AGISIGHUP": "no"},  # the program goes on after the hang-up: no SIGHUP ends it
        timeout=3.0,
    )

    report = json.loads(result.stderr or "")
    assert report["argv"] == ["identify", "x=1"]
    assert report["agi_dir"] == "/usr/share/asterisk/agi-bin"
    env = report["env"]
    assert "agi_network" not in env
    assert env["agi_request"] == sys.executable
    assert (env["agi_arg_1"], env["agi_arg_2"]) == ("identify", "x=1")
    assert env["agi_uniqueid"] == result.unique_id
    # No HANGUP line on classic AGI: the caller's hang-up shows as -1, then 511.
    assert report["replies"][0] == "200 result=0"
    assert report["replies"][1].startswith("200 result=0 endpos=")
    assert report["replies"][2:] == ["200 result=123456", "200 result=-1", DEAD_CHANNEL, DEAD_CHANNEL]
    assert result.transcript.prompts == ["welcome", "enter-key-number", "enter-pin"]
    assert result.transcript.hung_up_by == "caller"
    assert (result.closed_by_service, result.returncode) == (True, 3)


async def test_classic_program_ending_with_the_channel_up_transfers(program: list[str], sounds: SoundLibrary) -> None:
    commands = ["ANSWER", 'SET VARIABLE IVR_TRANSFER "Queue(keybox-agents)"']
    result = await run_classic_agi(
        program, caller=ScriptedCaller(), sounds=sounds, env={"SIM_COMMANDS": json.dumps(commands)}
    )

    assert json.loads(result.stderr or "")["replies"] == ["200 result=0", "200 result=1"]
    assert result.transcript.transferred_to == "Queue(keybox-agents)"


async def test_classic_program_that_lingers_after_a_hang_up_is_killed(program: list[str], sounds: SoundLibrary) -> None:
    result = await run_classic_agi(
        program,
        caller=ScriptedCaller("!"),
        sounds=sounds,
        close_wait=0.3,
        env={"SIM_COMMANDS": json.dumps(["WAIT FOR DIGIT 1000"]), "SIM_LINGER": "1"},
        variables={"AGISIGHUP": "no"},
    )

    assert json.loads(result.stderr or "")["replies"] == ["200 result=-1"]
    assert not result.closed_by_service
    assert result.returncode is not None and result.returncode < 0
    assert result.duration < 3


async def test_a_hang_up_sends_the_program_sighup(program: list[str], sounds: SoundLibrary) -> None:
    """As Asterisk does unless AGISIGHUP=no: this program has no handler, so SIGHUP ends it."""
    result = await run_classic_agi(
        program,
        caller=ScriptedCaller("!"),
        sounds=sounds,
        env={"SIM_COMMANDS": json.dumps(["WAIT FOR DIGIT 1000"]), "SIM_LINGER": "1"},
    )

    assert result.returncode == -signal.SIGHUP
    assert result.transcript.hung_up_by == "caller"
    assert result.closed_by_service and result.duration < 3
