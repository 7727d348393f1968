"""The `ivr` command as QA staff use it: real processes, real sockets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ivr.backends.kimvoice.sandbox import update_code_for


def ivr(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ivr", *args], capture_output=True, text=True, timeout=60,
        env={**os.environ, "IVR_LOG_FORMAT": "json", **(env or {})},
    )


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[str]:
    """`ivr sandbox` on a free port; ready once it has printed its address."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ivr", "sandbox", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert process.stdout is not None
    banner = process.stdout.readline()
    assert banner.startswith("KimVoice sandbox on http://127.0.0.1:"), banner
    yield banner.split()[3].removesuffix("/api/V1/")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0


def test_help_lists_the_commands() -> None:
    result = ivr("--help")
    assert result.returncode == 0
    assert "sandbox" in result.stdout and "kimvoice" in result.stdout
    methods = ivr("kimvoice", "--help").stdout
    for name in ("log-on", "health-check", "get-key-holders", "identify-key-holder", "validate-key-holder",
                 "get-update-code", "get-cbs-code"):
        assert name in methods


def test_get_key_holders_with_the_embedded_sandbox() -> None:
    result = ivr("kimvoice", "get-key-holders", "--key-number", "123456", "--pin", "2580")
    assert result.returncode == 0, result.stderr
    holders = json.loads(result.stdout)["keyHolders"]
    assert [(h["keyNumber"], h["name"], h["pods"]) for h in holders] == [(123456, "Jane Agent", [1])]
    assert "2580" not in result.stderr


def test_get_update_code_against_ivr_sandbox(sandbox_url: str) -> None:
    before = datetime.now(UTC)
    result = ivr("kimvoice", "--url", sandbox_url, "get-update-code", "--key-number", "234567",
                 "--primary-member", "5001", "--update-member", "8003", "--pod-number", "2")
    assert result.returncode == 0, result.stderr
    code = json.loads(result.stdout)["updateCode"]
    days = {(before + timedelta(seconds=s)).date().isoformat() for s in (0, 60)}
    assert code in {update_code_for(234567, 5001, 8003, 2, day) for day in days}
    assert code not in result.stderr


def test_get_cbs_code_and_the_validation_rule(sandbox_url: str) -> None:
    args = ["kimvoice", "--url", sandbox_url, "get-cbs-code", "--box-number", "90210", "--shackle-code", "4321",
            "--key-number", "123456", "--primary-member", "5001"]
    assert len(json.loads(ivr(*args).stdout)["cbsCode"]) == 6
    skipped = ivr(*args, "--no-validate")
    assert skipped.returncode == 1
    assert "ApiError 2004" in skipped.stderr


def test_health_check_uses_ivr_kimvoice_url(sandbox_url: str) -> None:
    result = ivr("kimvoice", "health-check", env={"IVR_KIMVOICE_URL": sandbox_url})
    assert json.loads(result.stdout) == {"operationalMode": "Normal", "message": None}


def test_log_on_shows_the_lifetime_not_the_token(sandbox_url: str) -> None:
    result = ivr("kimvoice", "--url", sandbox_url, "log-on")
    out = json.loads(result.stdout)
    assert out["token"].startswith("eyJ") and "…" in out["token"] and len(out["token"]) < 30
    lifetime = datetime.fromisoformat(out["expires"]) - datetime.fromisoformat(out["notBefore"])
    assert lifetime == timedelta(hours=48)


def test_an_api_error_is_one_line_and_exit_1() -> None:
    result = ivr("kimvoice", "identify-key-holder", "--key-number", "99999")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == (
        "error: KimVoice IdentifyKeyHolder refused with ApiError 1002 (HTTP 404): Key not found."
    )


def test_a_parameter_out_of_range_is_exit_2_and_sends_nothing() -> None:
    result = ivr("kimvoice", "get-key-holders", "--key-number", "9999", "--pin", "12a4")
    assert result.returncode == 2
    assert "key_number" in result.stderr and "pin" in result.stderr and "12a4" not in result.stderr
    assert "kimvoice.request" not in result.stderr


def test_an_unreachable_kimvoice_is_one_line() -> None:
    result = ivr("kimvoice", "--url", "http://127.0.0.1:9", "health-check", env={"IVR_KIMVOICE_TIMEOUT": "2"})
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith("error: KimVoice LogOn: cannot connect")
    assert "Traceback" not in result.stderr


def test_sandbox_refuses_a_busy_port(sandbox_url: str) -> None:
    port = sandbox_url.rsplit(":", 1)[1]
    result = ivr("sandbox", "--port", port)
    assert result.returncode == 1
    assert result.stderr.strip().startswith(f"error: cannot listen on 127.0.0.1:{port}")


def test_sandbox_rejects_bad_options(tmp_path: Path) -> None:
    result = ivr("sandbox", "--failure-rate", "3")
    assert result.returncode == 2 and "0<=x<=1" in result.stderr
