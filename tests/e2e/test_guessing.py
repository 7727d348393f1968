"""PIN guessing, tried as an attacker would: at once on one key, sprayed from withheld or rotating
numbers, with a full disk. What reaches KimVoice stays under the documented bounds; honest
callers still get in or reach an agent."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.line import Line, MakeLine, ReactingCaller, running_line

from ivr.backends.kimvoice.sandbox import Knobs
from ivr.records import Outcome

HONEST = "123456#2580#19"


async def test_five_hundred_staged_calls_on_one_key_send_five_guesses(tmp_path: Path) -> None:
    """Every call enters key 123456 and then a PIN at the same moment: only five guesses are sent."""
    async with running_line(tmp_path, Knobs(latency=0.3), kimvoice_health_timeout=30, kimvoice_timeout=30) as line:
        calls = await asyncio.gather(*(line.call(f"123456#{1000 + n:04d}#") for n in range(500)))
        assert line.requests("GetKeyHolders") == 5
        guessed = [c for c in calls if any(b.method == "GetKeyHolders" for b in c.record.backend)]
        assert len(guessed) == 5
        assert all(c.prompts[-2:] == ["key-locked", "goodbye"] for c in calls if c not in guessed)
        right = await line.call("123456#2580#")
        assert right.prompts[-2:] == ["key-locked", "goodbye"]
        assert line.requests("GetKeyHolders") == 5


async def test_withheld_numbers_share_one_allowance(make_line: MakeLine) -> None:
    withheld = ["anonymous", "unknown", "restricted", "", "Anonymous", "UNKNOWN", "Restricted"]
    async with make_line(lockout_withheld_failures=4) as line:
        # at once, as a spray would come (and over Pivot each hang-up is waited out side by side)
        await asyncio.gather(*(line.call(f"{20000 + n}#1234#!", caller_id=caller_id or "anonymous")
                               for n, caller_id in enumerate(withheld)))
        assert line.requests("GetKeyHolders") == 4
        refused = await line.call("123456#2580#19", caller_id="restricted")
        assert refused.prompts == ["welcome", "key-locked", "goodbye"]
        honest = await line.call(HONEST, caller_id="+15555550142")
        assert honest.record.outcome is Outcome.UPDATE_CODE_READ
        metrics = (await _http(line, "/metrics")).text
        assert 'ivr_guard_engaged_total{bound="withheld"} 1.0' in metrics


async def test_a_rotating_number_spray_is_paced_and_honest_callers_reach_an_agent(tmp_path: Path) -> None:
    """Past `lockout_global_failures` wrong guesses, one guess per `lockout_pace` for the whole line;
    callers who find no turn hear system-unavailable and go to an agent, never a lock."""
    pace = 0.1
    async with running_line(tmp_path, lockout_global_failures=6, lockout_pace=pace, lockout_pace_wait=0.5,
                            lockout_pace_queue=3) as line:
        for n in range(6):
            await line.call(f"{30000 + n}#1234#", caller_id=f"+1777000{n:04d}")
        started = asyncio.get_running_loop().time()
        spray = await asyncio.gather(*(line.call(f"{40000 + n}#1234#", caller_id=f"+1888000{n:04d}")
                                       for n in range(40)))
        elapsed = asyncio.get_running_loop().time() - started
        guesses = line.requests("GetKeyHolders") - 6
        assert guesses <= elapsed / pace + 1
        turned_away = [c for c in spray if c.record.detail == "SignInThrottledError"]
        assert len(turned_away) >= 40 - (elapsed / pace + 1)
        assert all(c.prompts[-2:] == ["system-unavailable", "transferring"] for c in turned_away)
        assert all(c.heard.variables["IVR_OUTCOME"] == "unavailable" for c in turned_away)
        assert all(c.record.outcome is Outcome.TRANSFERRED for c in turned_away)
        honest = await line.call(HONEST, caller_id="+15555550142")  # alone, it gets a turn
        assert honest.record.outcome is Outcome.UPDATE_CODE_READ
        metrics = (await _http(line, "/metrics")).text
        assert 'ivr_guard_engaged_total{bound="global"} 1.0' in metrics


async def test_a_key_typed_with_its_pin_behind_it_stays_masked(make_line: MakeLine) -> None:
    """No `#` after the key number: the PIN rides inside it. KimVoice does not know that key (1002)."""
    async with make_line() as line:
        call = await line.call("1234562580#" "1111#" "0", caller_id="+15555550143")
    assert call.record.key_number is None and call.record.key_entered == "********80"
    assert call.heard.variables["IVR_KEY_NUMBER"] == "********80"
    assert "1234562580" not in call.record.model_dump_json()


async def test_an_operator_lifts_a_lock_while_the_service_runs(tmp_path: Path) -> None:
    async with running_line(tmp_path) as line:
        await line.call("123456#1111#" "123456#2222#" "123456#3333#", caller_id="+15555550144")
        await line.call("123456#4444#" "123456#5555#", caller_id="+15555550145")
        listed = _ivr(tmp_path, "lockouts")
        assert "key       ****56" in listed.stdout, listed.stdout
        cleared = _ivr(tmp_path, "lockouts", "clear", "123456")
        assert cleared.stdout.strip() == "lifted: key ****56"
        call = await line.call(HONEST, caller_id="+15555550146")
        assert call.record.outcome is Outcome.UPDATE_CODE_READ
        assert _ivr(tmp_path, "lockouts").stdout.strip() == "no locks in force"


async def test_records_of_a_repeated_call_id_are_all_kept_and_shown_escaped(tmp_path: Path) -> None:
    async with running_line(tmp_path) as line:
        for pin in ("1111", "2222"):
            await line.call(f"123456#{pin}#!", caller_id="+1555\x1b[2J0147",
                            agi_env={"agi_uniqueid": "1700000000.42"})
    shown = _ivr(tmp_path, "calls", "1700000000.42").stdout
    assert shown.count("1700000000.42") == 2
    assert "\x1b" not in shown and "+1555\\x1b[2J0147" in shown


async def test_a_full_disk_refuses_the_guess_instead_of_sending_it_uncounted(tmp_path: Path) -> None:
    with _small_disk(tmp_path / "disk") as disk:
        async with running_line(disk) as line:
            warm = await line.call(HONEST, caller_id="+15555550148")
            assert warm.record.outcome is Outcome.UPDATE_CODE_READ
            filler = _fill(disk)
            sent_before = line.requests("GetKeyHolders")
            refused = await line.call(caller=ReactingCaller("123456#1111#", "system-unavailable", filler.unlink),
                                      caller_id="+15555550149")
            assert line.requests("GetKeyHolders") == sent_before  # nothing sent uncounted
            assert refused.prompts[-2:] == ["system-unavailable", "transferring"]
            assert refused.record.outcome is Outcome.TRANSFERRED and refused.record.detail == "StoreError"
            health = json.loads((await _http(line, "/healthz")).text)
            assert health["status"] == "ok"  # the disk has room again: the next write went through


# -- helpers ------------------------------------------------------------------------------


async def _http(line: Line, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=line.service.http.url) as client:
        return await client.get(path)


def _ivr(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    result = subprocess.run([sys.executable, "-m", "ivr", *args], capture_output=True, text=True, timeout=60,
                            env={**env, "IVR_DATA_DIR": str(data_dir), "IVR_LOG_LEVEL": "warning"}, cwd=data_dir)
    assert result.returncode == 0, result.stderr
    return result


@contextlib.contextmanager
def _small_disk(path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs at `path` (root on Linux); skipped where this machine cannot mount one."""
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as file:
        try:
            while True:
                file.write(b"\0" * 65536)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler
