"""`ivr outbound` from a terminal: the job goes into the store, a running `ivr serve` places it
through its embedded simulated Asterisk, and `--wait` shows each state and what the callee heard."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_serve import Served, serve


def ivr(data_dir: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "IVR_DATA_DIR": str(data_dir), "IVR_LOG_LEVEL": "warning"}
    return subprocess.run([sys.executable, "-m", "ivr", "outbound", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def served(tmp_path: Path) -> Served:
    served = serve(tmp_path, IVR_OUTBOUND_HOURS="00:00-24:00")
    yield served  # type: ignore[misc]
    served.process.terminate()
    served.process.wait(20)


def test_notice_wait_shows_each_state_and_what_the_callee_heard(served: Served, tmp_path: Path) -> None:
    result = ivr(tmp_path, "notice", "--to", "5551234", "--message", "Your showing is confirmed.",
                 "--code", "4384341", "--wait")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("job ") and lines[0].endswith("queued: notice to 5551234 via asterisk")
    states = [line.split()[1] for line in lines[1:] if line.startswith("  ") and line[2:3].isdigit()]
    assert states == ["queued", "dialing", "ringing", "answered", "completed"]
    assert "The simulated callee heard:" in result.stdout
    assert '"Your showing is confirmed."' in result.stdout and "*****41" in result.stdout
    assert "4384341" not in result.stdout + result.stderr


def test_a_busy_number_exits_1_after_its_attempts(served: Served, tmp_path: Path) -> None:
    result = ivr(tmp_path, "notice", "--to", "5550101", "--message", "Hello.", "--max-attempts", "1", "--wait")
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1].split()[1] == "busy"


@pytest.mark.parametrize(("args", "message"), [
    (["notice", "--to", "555-1234", "--message", "Hi."], "error: --to: must be + and 7 to 15 digits"),
    (["notice", "--to", "5551234", "--message", "x" * 501], "error: --message: must be 1 to 500 characters"),
    (["notice", "--to", "5551234", "--message", "Hi.", "--code", "12ab"], "error: --code: must be 4 to 12 digits"),
    (["bridge", "--to", "5551234", "--agent", "PJSIP/agent1", "--via", "ictcore"], "error: --via: ICTCore is not"),
])
def test_bad_input_is_one_line_and_nothing_is_stored(tmp_path: Path, args: list[str], message: str) -> None:
    result = ivr(tmp_path, *args)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(message)
    assert ivr(tmp_path, "list").stdout.strip() == "no jobs"


def test_list_show_and_cancel_without_a_service(tmp_path: Path) -> None:
    queued = ivr(tmp_path, "notice", "--to", "+15145551234", "--message", "Hi.", "--code", "99887766",
                 "--idempotency-key", "order-1")
    job_id = queued.stdout.split()[1]
    again = ivr(tmp_path, "notice", "--to", "+15145551234", "--message", "Hi.", "--code", "99887766",
                "--idempotency-key", "order-1")
    assert again.stdout.startswith(f"job {job_id} already exists")
    listed = ivr(tmp_path, "list").stdout.splitlines()
    assert len(listed) == 2 and listed[1].startswith(job_id) and listed[1].endswith("queued")
    shown = ivr(tmp_path, "show", job_id).stdout
    assert "code: ******66" in shown and "99887766" not in shown
    assert ivr(tmp_path, "cancel", job_id).stdout.strip() == f"job {job_id} cancelled"
    assert ivr(tmp_path, "list", "--status", "cancelled").stdout.count(job_id) == 1
    unknown = ivr(tmp_path, "show", "01ARZ3NDEKTSV4RRFFQ69G5FAV")
    assert unknown.returncode == 1 and unknown.stderr.strip() == "error: no job '01ARZ3NDEKTSV4RRFFQ69G5FAV'"


def test_ctrl_c_while_waiting_says_the_job_goes_on(tmp_path: Path) -> None:
    env = {**os.environ, "IVR_DATA_DIR": str(tmp_path), "IVR_LOG_LEVEL": "warning"}
    process = subprocess.Popen([sys.executable, "-m", "ivr", "outbound", "notice", "--to", "5551234", "--message",
                                "Hi.", "--wait"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    for line in process.stdout:  # no service runs the jobs here: it says so, then waits
        if "no `ivr serve` is running" in line:
            break
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 130
    assert stderr.splitlines()[0].startswith("stopped waiting; the job goes on: ivr outbound show ")
    assert "Traceback" not in stderr
