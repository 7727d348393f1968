"""`ivr serve` as a process: FastAGI and HTTP up, health and metrics, a clean drain on SIGTERM."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ivr.catalog import PromptCatalog, default_prompts_dir
from ivr.sim import ScriptedCaller, SoundLibrary, place_call
from ivr.tts import TtsCache


class Served:
    def __init__(self, process: subprocess.Popen[str], agi: str, http: str, data_dir: Path,
                 events: list[dict[str, object]]) -> None:
        self.process, self.agi, self.http, self.data_dir = process, agi, http, data_dir
        self.events = events  # what it logged up to `service.started`


def serve(data_dir: Path, open_files: tuple[int, int] | None = None, **extra: str) -> Served:
    """`ivr serve` on free ports with the embedded sandbox; ready once it logs `service.started`.

    `open_files`: the (soft, hard) limit it starts under; `extra`: more environment.
    """
    env = {**os.environ, "IVR_AGI_PORT": "0", "IVR_HTTP_PORT": "0", "IVR_DATA_DIR": str(data_dir),
           "IVR_LOG_FORMAT": "json", "IVR_DRAIN_SECONDS": "10", **extra}
    command = [sys.executable, "-m", "ivr", "serve"]
    if open_files is not None:
        boot = (f"import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_NOFILE, {open_files}); "
                "sys.argv = ['ivr', 'serve']; runpy.run_module('ivr', run_name='__main__')")
        command = [sys.executable, "-c", boot]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert process.stderr is not None
    events = []
    for line in process.stderr:
        events.append(event := json.loads(line))
        if event["event"] == "service.started":
            return Served(process, str(event["agi"]), str(event["http"]), data_dir, events)
    pytest.fail(f"ivr serve ended with {process.wait()}")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    served = serve(tmp_path)
    yield served
    if served.process.poll() is None:
        served.process.kill()
        served.process.wait()


async def test_serve_answers_calls_health_and_metrics(served: Served) -> None:
    sounds = SoundLibrary(PromptCatalog.load(default_prompts_dir()), TtsCache(served.data_dir / "tts"))
    call = await place_call(served.agi, "keybox", caller=ScriptedCaller("123456#2580#19"), sounds=sounds)
    assert call.transcript.prompts[-1] == "goodbye" and len(call.transcript.said_digits) == 1

    async with httpx.AsyncClient(base_url=served.http) as http:
        health = await http.get("/healthz")
        metrics = (await http.get("/metrics")).text
    assert health.status_code == 200
    assert health.json()["kimvoice"] == {**health.json()["kimvoice"], "reachable": True, "mode": "Normal"}
    assert 'ivr_calls_total{outcome="update_code_read",route="keybox"} 1.0' in metrics
    assert 'ivr_backend_seconds_count{method="GetUpdateCode",result="ok"} 1.0' in metrics
    assert "ivr_active_calls 0.0" in metrics


async def test_the_embedded_sandbox_is_said_loudly(served: Served) -> None:
    """A newcomer's `ivr serve` runs on the sandbox: a warning at start, and /healthz names it."""
    [warning] = [e for e in served.events if e["event"] == "kimvoice.sandbox_in_use"]
    assert warning["level"] == "warning"
    async with httpx.AsyncClient(base_url=served.http) as http:
        health = (await http.get("/healthz")).json()
    assert health["status"] == "ok"
    assert health["kimvoice"] == {**health["kimvoice"], "backend": "sandbox", "reachable": True}


@pytest.mark.parametrize("listener", ["IVR_AGI_HOST", "IVR_HTTP_HOST"])
def test_serve_refuses_the_unasked_sandbox_beyond_loopback(tmp_path: Path, listener: str) -> None:
    env = {**os.environ, "IVR_AGI_PORT": "0", "IVR_HTTP_PORT": "0", "IVR_DATA_DIR": str(tmp_path),
           "IVR_LOG_FORMAT": "json", listener: "0.0.0.0"}
    env.pop("IVR_KIMVOICE_URL", None)
    result = subprocess.run([sys.executable, "-m", "ivr", "serve"], env=env, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("error: IVR_KIMVOICE_URL is unset") and f"{listener}=0.0.0.0" in line
    assert "IVR_KIMVOICE_URL=sandbox" in line


def test_serve_runs_the_sandbox_asked_for_by_name_beyond_loopback(tmp_path: Path) -> None:
    served = serve(tmp_path, IVR_KIMVOICE_URL="sandbox", IVR_HTTP_HOST="0.0.0.0", IVR_AMI_HOST="sim",
                   IVR_API_TOKENS="a-token-of-32-characters-or-so-x")
    try:
        [warning] = [e for e in served.events if e["event"] == "kimvoice.sandbox_in_use"]
        assert warning["reason"] == "IVR_KIMVOICE_URL=sandbox"
        [simulated] = [e for e in served.events if e["event"] == "outbound.simulated_asterisk"]
        assert simulated["reason"] == "IVR_AMI_HOST=sim" and "nobody's phone rings" in simulated["effect"]
    finally:
        served.process.kill()
        served.process.wait()


@pytest.mark.parametrize(("extra", "starts", "names"), [
    ({"IVR_AMI_HOST": "sim"}, "error: IVR_API_TOKENS is empty while IVR_HTTP_HOST=0.0.0.0", "IVR_API=off"),
    ({"IVR_API": "off"}, "error: IVR_AMI_HOST is unset", "IVR_AMI_HOST=sim"),
])
def test_serve_refuses_an_open_api_or_a_simulated_asterisk_beyond_loopback(
    tmp_path: Path, extra: dict[str, str], starts: str, names: str
) -> None:
    env = {**os.environ, "IVR_AGI_PORT": "0", "IVR_HTTP_PORT": "0", "IVR_DATA_DIR": str(tmp_path),
           "IVR_LOG_FORMAT": "json", "IVR_HTTP_HOST": "0.0.0.0", "IVR_KIMVOICE_URL": "sandbox", **extra}
    result = subprocess.run([sys.executable, "-m", "ivr", "serve"], env=env, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 2
    *warnings, line = result.stderr.splitlines()
    assert [json.loads(w)["event"] for w in warnings] == ["kimvoice.sandbox_in_use"]
    assert line.startswith(starts) and names in line


async def test_sigterm_lets_a_call_in_progress_finish(served: Served) -> None:
    sounds = SoundLibrary(PromptCatalog.load(default_prompts_dir()), TtsCache(served.data_dir / "tts"))

    class SignalsMidCall(ScriptedCaller):
        def observe(self, event):
            super().observe(event)
            if event.kind == "prompt" and event.value == "enter-pin":
                served.process.send_signal(signal.SIGTERM)

    call = await place_call(served.agi, "keybox", caller=SignalsMidCall("123456#2580#19"), sounds=sounds)
    assert call.transcript.prompts[-1] == "goodbye"
    assert len(call.transcript.said_digits) == 1
    assert served.process.wait(timeout=20) == 0
    with pytest.raises(OSError):
        await place_call(served.agi, "keybox", caller=ScriptedCaller(""), sounds=sounds)


def test_serve_raises_its_open_files_limit_to_the_hard_limit(tmp_path: Path) -> None:
    """Under a soft limit of 256 (the hard one above it), a flood of connections would starve calls."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard <= 256:
        pytest.skip(f"needs a finite hard open-files limit above 256, not {hard}")
    served = serve(tmp_path, open_files=(256, hard))
    try:
        limits = Path(f"/proc/{served.process.pid}/limits").read_text()
        [row] = [line for line in limits.splitlines() if line.startswith("Max open files")]
        assert row.split()[3:5] == [str(hard), str(hard)]
        [logged] = [e for e in served.events if e["event"] == "service.open_files_limit"]
        assert logged["limit"] == hard and logged["level"] == "info"
    finally:
        served.process.kill()
        served.process.wait()


def test_calls_lists_what_serve_recorded(served: Served) -> None:
    env = {**os.environ, "IVR_DATA_DIR": str(served.data_dir)}
    subprocess.run([sys.executable, "-m", "ivr", "call", "--agi", served.agi, "--digits", "123456#2580#19"],
                   env=env, check=True, capture_output=True, timeout=60)
    listing = subprocess.run([sys.executable, "-m", "ivr", "calls"], env=env, check=True, capture_output=True,
                             text=True, timeout=60).stdout
    assert "keybox" in listing and "update_code_read" in listing and "key 123456" in listing
    [call_line] = [line for line in listing.splitlines() if "keybox" in line]  # under a header line
    call_id = call_line.split()[2]
    detail = subprocess.run([sys.executable, "-m", "ivr", "calls", call_id], env=env, check=True,
                            capture_output=True, text=True, timeout=60).stdout
    assert "get-update-code" in detail and "backend GetUpdateCode" in detail
    assert "2580" not in detail


def test_an_interactive_call_in_the_terminal(served: Served) -> None:
    """A newcomer types keys at each question and reads what the caller hears."""
    env = {**os.environ, "IVR_DATA_DIR": str(served.data_dir)}
    result = subprocess.run([sys.executable, "-m", "ivr", "call", "--agi", served.agi], env=env,
                            input="123456#\n2580#\n1\n9\n", capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert '[prompt] enter-pin  "Now enter your four-digit PIN."' in out
    assert out.count("keys?") == 4
    assert "[digits] " in out and out.rstrip().endswith("[hangup] service")


def test_call_without_a_service_says_what_to_do(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "ivr", "call", "--agi", "127.0.0.1:9", "--digits", "1"],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "IVR_DATA_DIR": str(tmp_path)})
    assert result.returncode == 1
    assert "start `ivr serve`" in result.stderr and "Traceback" not in result.stderr


def test_serve_stops_at_start_on_a_bad_lock_directory(tmp_path: Path) -> None:
    locks = tmp_path / "locks.toml"
    locks.write_text('[[lock]]\nnumber = 4711\nid = "202011161623"\nmodel = "KL1060C2"\nidentifier = "451254"\n'
                     'timezone = "Europe/Lodnon"\nduration = 4\n')
    env = {**os.environ, "IVR_AGI_PORT": "0", "IVR_HTTP_PORT": "0", "IVR_DATA_DIR": str(tmp_path / "data"),
           "IVR_CODELOCKS_URL": "http://127.0.0.1:9", "IVR_CODELOCKS_API_KEY": "k" * 20,
           "IVR_CODELOCKS_LOCKS_FILE": str(locks)}
    result = subprocess.run([sys.executable, "-m", "ivr", "serve"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert lines == [f"error: IVR_CODELOCKS_LOCKS_FILE {locks}: lock #1 (number 4711): timezone: "
                     "'Europe/Lodnon' is not a time zone"]
    assert "Traceback" not in result.stderr
