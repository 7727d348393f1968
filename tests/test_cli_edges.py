"""The rough edges a newcomer meets first, as they meet them: `ivr` run as a process, on real sockets.

Every command runs with an environment of its own: no stray IVR_* variable of the person running
the tests, a data directory under the test's temporary folder.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def clean_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without IVR_* variables, on `data_dir`, logging JSON."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    return {**env, "PYTHONPATH": str(REPO), "IVR_DATA_DIR": str(data_dir), "IVR_LOG_FORMAT": "json", **extra}


def ivr(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ivr", *args], capture_output=True, text=True, timeout=120,
                          env=clean_env(data_dir, **env), cwd=workdir(data_dir), check=False)


def workdir(data_dir: Path) -> Path:
    """A folder of the test's own to run in, so that no .env of the person running the tests is read."""
    return next(folder for folder in data_dir.parents if folder.is_dir())


class Served:
    """`ivr serve` on free ports; its FastAGI address once it has logged `service.started`."""

    def __init__(self, data_dir: Path, **env: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ivr", "serve"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env=clean_env(data_dir, IVR_AGI_PORT="0", IVR_HTTP_PORT="0", **env), cwd=workdir(data_dir),
        )
        assert self.process.stderr is not None
        for line in self.process.stderr:
            event = json.loads(line)
            if event["event"] == "service.started":
                self.agi = str(event["agi"])
                break
        else:
            pytest.fail(f"ivr serve ended with {self.process.wait()}")
        # Keep reading its logs, so that a full pipe never stalls it.
        threading.Thread(target=self.process.stderr.read, daemon=True).start()

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def served(data_dir: Path) -> Iterator[Served]:
    served = Served(data_dir, IVR_ENTRY_TIMEOUT_MS="1000", IVR_LOCKOUT_KEY_FAILURES="1")
    yield served
    served.stop()


# -- ivr demo --------------------------------------------------------------------------------


def test_demo_is_not_locked_by_the_users_own_wrong_pins(served: Served, data_dir: Path) -> None:
    wrong = ivr(data_dir, "call", "--agi", served.agi, "--digits", "123456#1111#")
    assert "[prompt] key-locked" in wrong.stdout, wrong.stdout + wrong.stderr
    assert "key" in ivr(data_dir, "lockouts").stdout  # the user's own line holds a lock on 123456

    demo = ivr(data_dir, "demo")

    assert demo.returncode == 0, demo.stderr
    assert "update_code_read" in demo.stdout and "key-locked" not in demo.stdout
    calls = ivr(data_dir, "calls").stdout.splitlines()
    assert len(calls) == 2  # the header and the user's own call: the demo left nothing behind


def test_demo_leaves_no_data_behind(data_dir: Path) -> None:
    demo = ivr(data_dir, "demo")
    assert demo.returncode == 0, demo.stderr
    assert not data_dir.exists()


def test_demo_answers_the_language_menu(data_dir: Path) -> None:
    demo = ivr(data_dir, "demo", IVR_LANGUAGES="en,fr,es")
    assert demo.returncode == 0, demo.stderr
    assert "[pressed] 1\n" in demo.stdout and "[pressed] 123456#" in demo.stdout
    assert demo.stdout.rstrip().splitlines()[-3].endswith("update_code_read")


def test_demo_uses_its_own_sandbox_whatever_the_backend_settings(data_dir: Path) -> None:
    demo = ivr(data_dir, "demo", IVR_KIMVOICE_URL="http://127.0.0.1:9", IVR_KIMVOICE_CLIENT_ID="prod-client")
    assert demo.returncode == 0, demo.stderr
    assert demo.stdout.rstrip().splitlines()[-3].endswith("update_code_read")


def test_demo_identify_types_a_key_number(data_dir: Path) -> None:
    demo = ivr(data_dir, "demo", "--route", "identify")
    assert demo.returncode == 0, demo.stderr
    assert '[tts] "Jane Agent"' in demo.stdout
    assert "2580" not in demo.stdout  # no PIN: the identify route asks for none
    assert demo.stdout.rstrip().splitlines()[-3].endswith("identified")


def test_demo_that_misses_its_outcome_fails(data_dir: Path) -> None:
    demo = ivr(data_dir, "demo", "--digits", "123456#1111#_")
    assert demo.returncode == 1
    assert demo.stderr.splitlines()[-1].startswith("error: the demo call ended ")
    assert "not cbs_code_read or update_code_read" in demo.stderr


# -- one line, no traceback ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["call", "--digits", "12x"], {}, "error: --digits: 'x' (character 3) is not a key"),
        (["call", "--agi", "127.0.0.1:abc"], {}, "error: --agi 127.0.0.1:abc: the port 'abc' is not a number"),
        (["call", "--route", "nosuch"], {}, "error: the service does not know route 'nosuch'"),
        (["calls"], {"IVR_LANGUAGES": "de"}, "error: IVR_LANGUAGES=de is not valid: expected 1 to 3 different "),
        (["calls"], {"IVR_LANGUAGES": "en,fr,es,en"}, "error: IVR_LANGUAGES=en,fr,es,en is not valid: expected"),
        (["calls"], {"IVR_LANGUAGES": "en,en"}, "error: IVR_LANGUAGES=en,en is not valid: expected"),
    ],
)
def test_a_bad_option_or_setting_is_one_line(
    data_dir: Path, args: list[str], env: dict[str, str], expected: str
) -> None:
    result = ivr(data_dir, *args, **env)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(expected), result.stderr


@pytest.mark.parametrize("under", ["", "x"])
def test_a_data_dir_that_is_a_file_is_one_line(tmp_path: Path, under: str) -> None:
    file = tmp_path / "a-file"
    file.write_text("")
    result = ivr(file / under if under else file, "lockouts")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: IVR_DATA_DIR=")
    assert result.stderr.endswith(f"({file} is not a directory)\n")


# -- ivr kimvoice and ivr sandbox ----------------------------------------------------------------


def test_kimvoice_prints_the_answer_only(data_dir: Path) -> None:
    args = ["kimvoice", "get-key-holders", "--key-number", "123456", "--pin", "2580"]
    quiet = ivr(data_dir, *args)
    assert quiet.returncode == 0
    assert json.loads(quiet.stdout)["keyHolders"][0]["keyNumber"] == 123456
    assert quiet.stderr == ""

    verbose = ivr(data_dir, "kimvoice", "-v", *args[1:])
    assert json.loads(verbose.stdout) == json.loads(quiet.stdout)
    assert {json.loads(line)["event"] for line in verbose.stderr.splitlines()} >= {"kimvoice.request"}


def test_sandbox_lists_the_unknown_key(data_dir: Path) -> None:
    process = subprocess.Popen([sys.executable, "-m", "ivr", "sandbox", "--port", "0"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, env=clean_env(data_dir),
                               cwd=workdir(data_dir))
    assert process.stdout is not None
    try:
        listing = list(iter(process.stdout.readline, "Ctrl-C stops it.\n"))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    keys = [line.split()[1] for line in listing if line.startswith("  key ")]
    assert keys == ["123456", "234567", "345678", "456789", "567890", "678901", "99999"]
    assert any("99999  PIN any" in line and "1001" in line and "1002" in line for line in listing)


# -- ivr call at a terminal ------------------------------------------------------------------------


class Terminal:
    """`ivr call` with a pseudo-terminal for its stdin and stdout, as a person runs it."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        self.master, self.slave = pty.openpty()
        self.process = subprocess.Popen([sys.executable, "-m", "ivr", "call", *args], stdin=self.slave,
                                        stdout=self.slave, stderr=subprocess.DEVNULL, env=clean_env(data_dir),
                                        cwd=workdir(data_dir))
        self.seen = ""

    def wait_for(self, text: str, count: int = 1, within: float = 20) -> None:
        """Read the screen until `text` has appeared `count` times."""
        deadline = time.monotonic() + within
        while self.seen.count(text) < count:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.master], [], [], left)[0]:
                pytest.fail(f"{text!r} did not show ({count}) within {within} s; the screen:\n{self.seen}")
            try:
                self.seen += os.read(self.master, 4096).decode(errors="replace")
            except OSError:  # the program ended and the terminal closed
                pytest.fail(f"{text!r} never showed; the screen:\n{self.seen}")

    def press(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def close(self) -> tuple[int, int]:
        """The program's exit code, and the terminal's local modes it left behind."""
        try:
            code = self.process.wait(timeout=30)
            return code, termios.tcgetattr(self.slave)[3]
        finally:
            if self.process.poll() is None:  # a failed test leaves no program behind
                self.process.kill()
                self.process.wait()
            os.close(self.master)
            os.close(self.slave)


def test_interactive_call_reads_keys_without_enter_and_times_out(served: Served, data_dir: Path) -> None:
    terminal = Terminal(data_dir, "--agi", served.agi)
    try:
        terminal.wait_for("keys? (up to 10 keys")
        # Nothing typed: the line's own timeout (IVR_ENTRY_TIMEOUT_MS, 1 s) passes and it asks again.
        terminal.wait_for("keys? (up to 10 keys", count=2)
        assert "1 s;" in terminal.seen
        terminal.press("123456#")  # no Enter, as on a phone
        terminal.wait_for("keys? (up to 4 keys")
        terminal.press("2580")
        terminal.wait_for("choose-code-type")
        terminal.wait_for("keys? (up to 1 keys")
        terminal.press("1")
        terminal.wait_for("after-code-menu")
        terminal.wait_for("keys?", count=5)
        terminal.press("9")
        terminal.wait_for("[hangup] service")
    finally:
        code, lflag = terminal.close()
    assert code == 0
    assert "[digits]" in terminal.seen
    assert lflag & termios.ICANON and lflag & termios.ECHO  # the terminal is as it was


def test_interactive_call_ctrl_d_hangs_up(served: Served, data_dir: Path) -> None:
    terminal = Terminal(data_dir, "--agi", served.agi)
    try:
        terminal.wait_for("keys? (up to 10 keys")
        terminal.press("12\x04")
        terminal.wait_for("[hangup] caller")
    finally:
        assert terminal.close()[0] == 0
