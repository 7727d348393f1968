"""benchmarks/load.py over Kazoo Pivot runs: two paced calls each way against a real `ivr serve`
and sandbox, checked as the harness checks every call (the code read, one record each).

A smoke test of the harness, not a benchmark: nothing here is timed. It runs the script as a
user does, in a process of its own (the harness freezes the collector and sets signal handlers).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN_LIMIT = 120.0  # a bound on a hung run, not a timing: the run takes a few seconds


def test_the_pivot_mode_and_its_fastagi_comparison_check_every_call(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "load.py"), "--transport", "pivot", "--compare-agi",
         "--mode", "paced", "--concurrency", "2", "--calls-per-caller", "1", "--think-min", "0", "--think-max", "0",
         "--warmup", "1", "--json", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=RUN_LIMIT, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    agi, pivot = json.loads(out.read_text())
    assert [agi["transport"], pivot["transport"]] == ["agi", "pivot"]
    for result in (agi, pivot):
        assert (result["completed"], result["failed"]) == (2, 0), result["failures"]
        assert result["records"] == {"calls": 2, "one_record": 2, "problems": {}}
    assert pivot["requests_per_call"] > 1  # Kazoo came back with the caller's keys
    assert "== Kazoo Pivot / FastAGI (paced, 2 concurrent)" in done.stdout
    assert "secret" not in (done.stdout + done.stderr).lower()  # the run's pivot secret is never printed


def test_pivot_needs_the_service(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "load.py"), "--transport", "pivot", "--target", "bare"],
        cwd=tmp_path, capture_output=True, text=True, timeout=RUN_LIMIT, check=False,
    )
    assert done.returncode == 2
    assert "the bare responder speaks FastAGI only" in done.stderr
