"""`ivr kazoo provision` and `ivr kazoo status` against a real Kazoo sandbox on loopback.

The sandbox serves from a thread of its own (its own event loop) while the command runs in the
test's, as `ivr` does in its process: each case asserts the lines printed, the exit code, and
that the pivot secret never shows.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from click.testing import CliRunner, Result
from support.threaded import Threaded, logging_restored
from test_serve import serve

from ivr.cli import cli
from ivr.outbound.platforms.kazoo import pivot_flow
from ivr.outbound.platforms.kazoo.sandbox import (
    AGENT_DEVICE_ID,
    SANDBOX_ACCOUNT_ID,
    SANDBOX_ACCOUNT_NAME,
    SANDBOX_API_KEY,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
    KazooSandboxServer,
)

T = TypeVar("T")
SECRET = "cli-pivot-secret-5e1f0c"
PUBLIC = "http://ivr.example:8080"
NUMBER = "5550900"
__all__ = ["logging_restored"]  # an autouse fixture, used by being here


class Kazoo(Threaded[KazooSandboxServer]):
    """A Kazoo sandbox on its own loop in a thread."""

    def __init__(self) -> None:
        super().__init__(KazooSandboxServer())

    @property
    def callflows(self) -> list[dict[str, Any]]:
        return list(self.server.sandbox.callflows.values())


@pytest.fixture
def kazoo() -> Iterator[Kazoo]:
    running = Kazoo()
    try:
        yield running
    finally:
        running.close()


def env(kazoo: Kazoo, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"IVR_DATA_DIR": str(tmp_path), "IVR_KAZOO_URL": kazoo.server.crossbar_url,
            "IVR_KAZOO_USERNAME": SANDBOX_USERNAME, "IVR_KAZOO_PASSWORD": SANDBOX_PASSWORD,
            "IVR_KAZOO_ACCOUNT_NAME": SANDBOX_ACCOUNT_NAME, "IVR_PUBLIC_URL": PUBLIC,
            "IVR_KAZOO_PIVOT_SECRET": SECRET, **extra}


def ivr(environment: dict[str, str], *args: str) -> Result:
    result = CliRunner().invoke(cli, list(args), env=environment)
    assert SECRET not in result.output and SECRET not in result.stderr, "the pivot secret is never printed"
    assert "Traceback" not in result.output
    return result


def only_line(text: str) -> str:
    [line] = text.splitlines()
    return line


# -- provision ------------------------------------------------------------------------------------


def test_provision_creates_the_callflow_then_changes_nothing(kazoo: Kazoo, tmp_path: Path) -> None:
    first = ivr(env(kazoo, tmp_path), "kazoo", "provision", "--number", NUMBER)
    [made] = kazoo.callflows
    again = ivr(env(kazoo, tmp_path), "kazoo", "provision", "--number", NUMBER)

    assert first.exit_code == 0, first.output
    assert only_line(first.stdout) == (f"created callflow {made['id']} (keybox announce): {NUMBER} -> "
                                       f"{PUBLIC}/kazoo/pivot/announce?secret=…")
    assert made["numbers"] == [NUMBER]
    assert made["flow"] == pivot_flow(f"{PUBLIC}/kazoo/pivot/announce?secret={SECRET}")
    assert made["flow"]["data"]["req_format"] == "kazoo"
    assert again.exit_code == 0, again.output
    assert only_line(again.stdout) == (f"callflow {made['id']} (keybox announce) already sends {NUMBER} to "
                                       f"{PUBLIC}/kazoo/pivot/announce?secret=…: nothing changed")
    assert kazoo.callflows == [made]


def test_provision_updates_our_callflow_to_a_new_secret_or_route(kazoo: Kazoo, tmp_path: Path) -> None:
    ivr(env(kazoo, tmp_path, IVR_KAZOO_PIVOT_SECRET="an-older-secret-0000"), "kazoo", "provision", "--number",
        NUMBER)
    result = ivr(env(kazoo, tmp_path), "kazoo", "provision", "--number", NUMBER, "--route", "keybox",
                 "--name", "key line")
    [flow] = kazoo.callflows
    assert result.exit_code == 0, result.output
    assert only_line(result.stdout) == (f"updated callflow {flow['id']} (key line): {NUMBER} -> "
                                        f"{PUBLIC}/kazoo/pivot/keybox?secret=…")
    assert flow["flow"]["data"]["voice_url"] == f"{PUBLIC}/kazoo/pivot/keybox?secret={SECRET}"


def test_a_number_in_kazoos_e164_form_is_found_again(kazoo: Kazoo, tmp_path: Path) -> None:
    """Kazoo stores 4155550900 as +14155550900: the rerun finds it rather than clash with it."""
    kazoo.server.sandbox.save_callflow({"name": "keybox announce", "numbers": ["+14155550900"],
                                        "flow": pivot_flow(f"{PUBLIC}/kazoo/pivot/announce?secret={SECRET}")})
    result = ivr(env(kazoo, tmp_path), "kazoo", "provision", "--number", "4155550900")
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("nothing changed\n") and len(kazoo.callflows) == 1


@pytest.mark.parametrize(("unset", "named"), [
    ("IVR_KAZOO_URL", "IVR_KAZOO_URL is not set"),
    ("IVR_PUBLIC_URL", "IVR_PUBLIC_URL is not set"),
    ("IVR_KAZOO_PIVOT_SECRET", "IVR_KAZOO_PIVOT_SECRET is not set"),
])
def test_provision_refuses_without_its_settings(kazoo: Kazoo, tmp_path: Path, unset: str, named: str) -> None:
    environment = {k: v for k, v in env(kazoo, tmp_path).items() if k != unset}
    result = ivr(environment, "kazoo", "provision", "--number", NUMBER)
    assert result.exit_code == 2
    assert named in only_line(result.stderr) and result.stdout == ""
    assert kazoo.callflows == [] and sum(kazoo.server.sandbox.requests.values()) == 0


@pytest.mark.parametrize("number", ["12", "5550900x", "1234567890123456", "++5550900", ""])
def test_provision_refuses_a_number_that_is_not_one(kazoo: Kazoo, tmp_path: Path, number: str) -> None:
    result = ivr(env(kazoo, tmp_path), "kazoo", "provision", "--number", number)
    assert result.exit_code == 2
    assert only_line(result.stderr).startswith("error: --number ") and "3 to 15 digits" in result.stderr
    assert kazoo.callflows == []


def test_provision_refuses_wrong_credentials_in_one_line(kazoo: Kazoo, tmp_path: Path) -> None:
    result = ivr(env(kazoo, tmp_path, IVR_KAZOO_PASSWORD="not-the-password"), "kazoo", "provision", "--number",
                 NUMBER)
    assert result.exit_code == 1
    assert only_line(result.stderr) == ("error: Kazoo refused the credentials (user_auth, HTTP 401): check "
                                        "IVR_KAZOO_USERNAME / IVR_KAZOO_PASSWORD / IVR_KAZOO_ACCOUNT_NAME")
    assert "not-the-password" not in result.output and kazoo.callflows == []


def test_a_number_taken_by_another_callflow_is_refused_unless_replace(kazoo: Kazoo, tmp_path: Path) -> None:
    theirs = kazoo.server.sandbox.save_callflow({"name": "front desk", "numbers": [NUMBER],
                                                 "flow": {"module": "voicemail", "data": {}, "children": {}}})
    refused = ivr(env(kazoo, tmp_path), "kazoo", "provision", "--number", NUMBER)
    assert refused.exit_code == 1
    assert only_line(refused.stderr) == (f"error: number {NUMBER} belongs to callflow {theirs['id']} (front desk), "
                                         "which does not pivot to IVR_PUBLIC_URL: --replace to take it over")
    assert kazoo.callflows[0]["flow"]["module"] == "voicemail"

    replaced = ivr(env(kazoo, tmp_path), "kazoo", "provision", "--number", NUMBER, "--replace")
    assert replaced.exit_code == 0, replaced.output
    assert only_line(replaced.stdout).startswith(f"updated callflow {theirs['id']} (keybox announce): {NUMBER} -> ")
    [flow] = kazoo.callflows
    assert flow["flow"]["module"] == "pivot"


def test_a_callflow_pivoting_elsewhere_is_not_ours_either(kazoo: Kazoo, tmp_path: Path) -> None:
    kazoo.server.sandbox.save_callflow({"name": "other ivr", "numbers": [NUMBER],
                                        "flow": pivot_flow("http://elsewhere.example/kazoo/pivot/announce")})
    result = ivr(env(kazoo, tmp_path), "kazoo", "provision", "--number", NUMBER)
    assert result.exit_code == 1 and "does not pivot to IVR_PUBLIC_URL" in only_line(result.stderr)


def test_provision_with_kazoo_down_is_one_line(kazoo: Kazoo, tmp_path: Path) -> None:
    environment = env(kazoo, tmp_path)
    kazoo.run(kazoo.server.stop())
    result = ivr(environment, "kazoo", "provision", "--number", NUMBER)
    assert result.exit_code == 1
    assert only_line(result.stderr) == "error: Kazoo user_auth: cannot connect (ConnectError)"


# -- status ---------------------------------------------------------------------------------------


def test_status_shows_auth_our_callflows_the_notice_number_and_calls(kazoo: Kazoo, tmp_path: Path) -> None:
    ivr(env(kazoo, tmp_path), "kazoo", "provision", "--number", NUMBER)
    ivr(env(kazoo, tmp_path, IVR_KAZOO_PIVOT_SECRET="an-older-secret-0000"), "kazoo", "provision", "--number",
        "5550901", "--route", "keybox")
    kazoo.server.sandbox.save_callflow({"name": "front desk", "numbers": ["5550902"],
                                        "flow": {"module": "voicemail", "data": {}, "children": {}}})
    announce, keybox = (cf["id"] for cf in kazoo.callflows[:2])
    result = ivr(env(kazoo, tmp_path, IVR_KAZOO_NOTICE_NUMBER=NUMBER), "kazoo", "status")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"crossbar:   {kazoo.server.crossbar_url} (user_auth, user '{SANDBOX_USERNAME}' in account name "
        f"'{SANDBOX_ACCOUNT_NAME}')",
        f"auth:       ok, account {SANDBOX_ACCOUNT_ID}",
        f"pivots to:  {PUBLIC}/kazoo/pivot/",
        f"  {announce} (keybox announce): {NUMBER} -> announce, secret matches",
        f"  {keybox} (keybox keybox): 5550901 -> keybox, secret DIFFERS from IVR_KAZOO_PIVOT_SECRET",
        f"notices:    IVR_KAZOO_NOTICE_NUMBER {NUMBER} provisioned to announce",
        "calls:      0 in progress",
    ]
    assert "an-older-secret-0000" not in result.output


def test_status_with_an_api_key_nothing_provisioned_and_a_call_up(kazoo: Kazoo, tmp_path: Path) -> None:
    sandbox = kazoo.server.sandbox
    sandbox.knobs.call_seconds = 60

    async def quickcall() -> None:  # a bridge: the agent's leg, then the key holder's, both up
        sandbox.quickcall("devices", AGENT_DEVICE_ID, "5551234", {"keybox_job_id": "J-1"}, {}, "r1")
        while [ch["answered"] for ch in sandbox.channels()] != [True, True]:
            await sandbox.wait_next_change()

    kazoo.run(quickcall())
    environment = {k: v for k, v in env(kazoo, tmp_path, IVR_KAZOO_API_KEY=SANDBOX_API_KEY,
                                        IVR_KAZOO_NOTICE_NUMBER="5550999").items()
                   if k not in ("IVR_KAZOO_USERNAME", "IVR_KAZOO_PASSWORD")}
    result = ivr(environment, "kazoo", "status")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].endswith("(api_auth, IVR_KAZOO_API_KEY)") and SANDBOX_API_KEY not in result.output
    assert "  no callflow pivots to this service: `ivr kazoo provision --number N`" in lines
    assert ("notices:    IVR_KAZOO_NOTICE_NUMBER 5550999 NOT provisioned here: `ivr kazoo provision --number "
            "5550999`") in lines
    # Kazoo's channel list carries no custom application variables: only the count
    assert lines[-1] == "calls:      2 in progress (Kazoo's list does not say which are ours)"


def test_status_with_wrong_credentials_exits_1(kazoo: Kazoo, tmp_path: Path) -> None:
    result = ivr(env(kazoo, tmp_path, IVR_KAZOO_PASSWORD="not-the-password"), "kazoo", "status")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[1] == (
        "auth:       FAILED: Kazoo refused the credentials (user_auth, HTTP 401): check IVR_KAZOO_USERNAME / "
        "IVR_KAZOO_PASSWORD / IVR_KAZOO_ACCOUNT_NAME")
    assert len(result.stdout.splitlines()) == 2


def test_status_with_kazoo_down_exits_1_in_one_line(kazoo: Kazoo, tmp_path: Path) -> None:
    environment = env(kazoo, tmp_path)
    kazoo.run(kazoo.server.stop())
    result = ivr(environment, "kazoo", "status")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[1] == "auth:       FAILED: Kazoo user_auth: cannot connect (ConnectError)"


def test_status_without_kazoo_is_one_line(tmp_path: Path) -> None:
    result = ivr({"IVR_DATA_DIR": str(tmp_path)}, "kazoo", "status")
    assert result.exit_code == 2
    assert only_line(result.stderr) == "error: IVR_KAZOO_URL is not set: no Kazoo to ask"


# -- the commands together, as an operator runs them ----------------------------------------------


def test_a_notice_through_the_kazoo_sandbox_process_shows_what_its_callee_heard(tmp_path: Path) -> None:
    """`ivr kazoo-sandbox` (its media side on), `ivr serve`, `ivr kazoo provision`, then
    `ivr outbound notice --via kazoo --wait`: each its own process, one data directory."""
    base = {**os.environ, "IVR_DATA_DIR": str(tmp_path), "IVR_LOG_LEVEL": "warning"}
    sandbox = subprocess.Popen([sys.executable, "-m", "ivr", "kazoo-sandbox", "--port", "0"], env=base,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    served = None
    try:
        assert sandbox.stdout is not None
        banner = sandbox.stdout.readline()
        assert banner.startswith("Kazoo sandbox on http://127.0.0.1:") and "pivot callflows are played" in banner
        kazoo_env = {"IVR_KAZOO_URL": banner.split()[3], "IVR_KAZOO_USERNAME": SANDBOX_USERNAME,
                     "IVR_KAZOO_PASSWORD": SANDBOX_PASSWORD, "IVR_KAZOO_ACCOUNT_NAME": SANDBOX_ACCOUNT_NAME,
                     "IVR_KAZOO_PIVOT_SECRET": SECRET, "IVR_KAZOO_NOTICE_NUMBER": NUMBER}
        served = serve(tmp_path, IVR_OUTBOUND_HOURS="00:00-24:00", **kazoo_env)
        env = {**base, **kazoo_env, "IVR_PUBLIC_URL": served.http}
        provision = subprocess.run([sys.executable, "-m", "ivr", "kazoo", "provision", "--number", NUMBER],
                                   env=env, capture_output=True, text=True, timeout=60)
        notice = subprocess.run([sys.executable, "-m", "ivr", "outbound", "notice", "--via", "kazoo", "--to",
                                 "5551234", "--message", "Your showing is confirmed.", "--code", "4384341", "--wait"],
                                env=env, capture_output=True, text=True, timeout=60)
    finally:
        if served is not None:
            served.process.terminate()
            served.process.wait(20)
        sandbox.send_signal(signal.SIGTERM)
        stopped = sandbox.wait(10)

    assert provision.returncode == 0, provision.stderr
    assert provision.stdout.startswith("created callflow ") and SECRET not in provision.stdout
    assert notice.returncode == 0, notice.stderr
    after = notice.stdout.split("The simulated callee heard:\n")[1].splitlines()
    heard = [line for line in after if line.startswith("  ")]
    assert heard[0] == "  [answer]" and '  [prompt] announce-menu  "To hear this message again, press 1."' in heard
    assert heard[-1] == "  [hangup] service"
    assert notice.stdout.splitlines()[-1].endswith("-quickcall: announced; codes read: *****41")
    assert "4384341" not in notice.stdout + notice.stderr
    assert stopped == 0
