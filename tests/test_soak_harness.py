"""benchmarks/soak.py: a few paced callers for a few seconds against a real `ivr serve` and a
sandbox failing a fifth of KimVoice's requests, checked as the soak checks every call.

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


def test_a_short_soak_reports_every_figure_and_one_record_per_call(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "soak.py"), "--callers", "3", "--minutes", "0.04",
         "--think", "0", "0", "--failure-rate", "0.2", "--warmup-seconds", "0", "--window-seconds", "1",
         "--rss-every", "0.5", "--json", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=RUN_LIMIT, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    calls, records = result["calls"], result["records"]
    assert calls["placed"] > 0
    assert sum(calls["by_kind"].values()) == calls["placed"]
    assert set(calls["by_kind"]) == {"code read", "system-unavailable, transferred",
                                     "system-unavailable, not transferred", "other"}
    assert 0 <= result["callers_all_code"]["all_code"] <= result["callers_all_code"]["callers"] == 3
    assert set(result["turnaround_ms"]) == {"p50", "p90", "p99", "max", "commands"}
    first_minute = result["turnaround_by_minute"][0]
    assert {"minute", "p50", "p99", "commands"} <= set(first_minute)
    assert result["rss_kb"]["samples"] and result["rss_kb"]["first_minute_mean"] > 0
    assert result["cpu_s"]["service"] >= 0
    assert result["sandbox"]["requests"] > 0 and result["sandbox"]["by_method"]
    assert isinstance(result["service_metrics"], dict)
    assert result["service_exit_code"] == 0
    assert (records["calls"], records["one_record"]) == (calls["placed"], calls["placed"])
    assert (records["missing"], records["doubled"], records["mismatches"]) == ([], {}, {})
    assert "call records" in done.stdout


def test_the_failure_rate_is_a_share(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "soak.py"), "--failure-rate", "5"],
        cwd=tmp_path, capture_output=True, text=True, timeout=RUN_LIMIT, check=False,
    )
    assert done.returncode == 2
    assert "--failure-rate must be within 0..1" in done.stderr
