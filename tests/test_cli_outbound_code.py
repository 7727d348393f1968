"""`ivr outbound code` from a terminal, against a KimVoice sandbox on loopback: the job's own
options are checked before KimVoice is asked anything."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from ivr.backends.kimvoice.sandbox import SandboxServer

CODE = ["code", "--key-number", "123456", "--member", "5001", "--pod", "1"]


async def ivr(data_dir: Path, kimvoice_url: str, *args: str) -> tuple[int, str, str]:
    """The CLI in its own process, while this one's event loop serves the sandbox."""
    env = {**os.environ, "IVR_DATA_DIR": str(data_dir), "IVR_LOG_LEVEL": "warning", "IVR_KIMVOICE_URL": kimvoice_url}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ivr", "outbound", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_a_bad_option_is_one_line_and_kimvoice_is_not_asked(tmp_path: Path) -> None:
    async with SandboxServer() as kimvoice:
        code, out, err = await ivr(tmp_path, kimvoice.url, *CODE, "--to", "abc")
        asked = dict(kimvoice.sandbox.requests)
        good, queued, _ = await ivr(tmp_path, kimvoice.url, *CODE, "--to", "5551234")
    assert code == 2 and out == ""
    [line] = err.splitlines()
    assert line.startswith("error: --to: must be + and 7 to 15 digits")
    assert asked == {}
    # the same command with a good number asks KimVoice and queues the notice
    assert good == 0 and queued.startswith("job ") and "queued: notice to 5551234 via asterisk" in queued
    assert set(kimvoice.sandbox.requests) >= {"ValidateKeyHolder", "GetUpdateCode"}
