"""`ivr call --via pivot`: a call into a running `ivr serve` as Kazoo's pivot requests make it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from test_serve import serve

SECRET = "pivot-secret-0123456789"


def test_a_scripted_call_over_pivot_reads_the_code(tmp_path: Path) -> None:
    served = serve(tmp_path, IVR_KAZOO_PIVOT_SECRET=SECRET)
    try:
        env = {**os.environ, "IVR_DATA_DIR": str(tmp_path), "IVR_KAZOO_PIVOT_SECRET": SECRET,
               "IVR_LOG_LEVEL": "warning"}
        result = subprocess.run([sys.executable, "-m", "ivr", "call", "--via", "pivot", "--url", served.http,
                                 "--digits", "123456#2580#19"], env=env, capture_output=True, text=True, timeout=60)
    finally:
        served.process.terminate()
        served.process.wait(20)
    assert result.returncode == 0, result.stderr
    assert "(as Kazoo's pivot)" in result.stdout.splitlines()[0]
    prompts = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("  [prompt]")]
    assert prompts[:3] == ["welcome", "enter-key-number", "enter-pin"] and prompts[-1] == "goodbye"
    lines = result.stdout.splitlines()
    after = lines[lines.index('  [prompt] your-update-code-is  "Your update code is"') + 1:]
    spoken = after[:after.index(next(line for line in after if "after-code-menu" in line))]
    # the 7 digits, one TTS render each, which the caller hears as digits; then the instructions,
    # a render of which another process shows only that it was spoken
    assert len(spoken) == 2 and re.fullmatch(r"  \[digits\]( [0-9]){7}", spoken[0])
    assert spoken[1].startswith("  [tts] ")


def test_via_pivot_without_the_secret_is_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "IVR_DATA_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "ivr", "call", "--via", "pivot", "--digits", "1"], env=env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert "IVR_KAZOO_PIVOT_SECRET is not set" in line
