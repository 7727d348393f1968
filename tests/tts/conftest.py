"""Fixtures for the TTS tests: real audio checks, and a fake TTS program that counts its calls.

The espeak tests run the real espeak-ng and sox (`apt-get install espeak-ng sox`; CI's
`.ci/run` installs them). The fake program is a Python script written to `tmp_path`: it
writes a sine tone as a WAV at 22050 Hz stereo (not the phone format, so the conversion is
tested), one line per call in its log, and can be told to fail, to take its time, or to wait
at a gate (`--gate HOST:PORT`: it connects there and goes on once it has read one byte).
"""

from __future__ import annotations

import array
import json
import math
import shlex
import sys
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from ivr.tts import CommandEngine

FAKE_TTS = r'''
import io, json, math, struct, sys, time, wave

LOG = __LOG__
args = sys.argv[1:]
opts = {"rate": "22050", "channels": "2", "sleep": "0", "out": None, "text": None, "fail": None, "gate": None}
while args:
    flag = args.pop(0).lstrip("-")
    opts[flag] = args.pop(0) if flag != "fail" else "yes"
text = opts["text"] if opts["text"] is not None else sys.stdin.read()
with open(LOG, "a", encoding="utf-8") as log:
    log.write(json.dumps({"argv": sys.argv[1:], "text": text}) + "\n")
if opts["fail"]:
    print("fake-tts: no such voice", file=sys.stderr)
    sys.exit(3)
time.sleep(float(opts["sleep"]))
if opts["gate"]:
    import socket
    host, port = opts["gate"].rsplit(":", 1)
    with socket.create_connection((host, int(port))) as gate:
        gate.recv(1)
rate, channels = int(opts["rate"]), int(opts["channels"])
frames = int(rate * (0.3 + 0.3 * len(text.split())))
tone = [int(8000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(frames)]
samples = [s for s in tone for _ in range(channels)]
body = io.BytesIO()
with wave.open(body, "wb") as wav:
    wav.setnchannels(channels)
    wav.setsampwidth(2)
    wav.setframerate(rate)
    wav.writeframes(struct.pack(f"<{len(samples)}h", *samples))
if opts["out"]:
    with open(opts["out"], "wb") as out:
        out.write(body.getvalue())
else:
    sys.stdout.buffer.write(body.getvalue())
'''


@dataclass
class FakeTts:
    """The fake TTS program, its log, and command templates that run it."""

    program: Path
    log: Path

    def template(self, *extra: str, to_file: bool = True, text_arg: bool = True) -> str:
        parts = [shlex.quote(str(self.program)), *extra]
        if to_file:
            parts += ["--out", "{out}"]
        if text_arg:
            parts += ["--text", "{text}"]
        return " ".join(parts)

    def engine(self, *extra: str, **kwargs: bool) -> CommandEngine:
        return CommandEngine(self.template(*extra, **kwargs), timeout=10)

    @property
    def calls(self) -> list[dict[str, object]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def fake_tts(tmp_path: Path) -> FakeTts:
    program = tmp_path / "bin" / "fake-tts"
    program.parent.mkdir()
    log = tmp_path / "fake-tts.log"
    program.write_text(f"#!{sys.executable}\n" + FAKE_TTS.replace("__LOG__", repr(str(log))), encoding="utf-8")
    program.chmod(0o755)
    return FakeTts(program, log)


@dataclass(frozen=True)
class Audio:
    rate: int
    channels: int
    sample_width: int
    seconds: float
    rms: float

    @property
    def is_phone_format(self) -> bool:
        """8 kHz, mono, 16-bit: what Asterisk plays."""
        return (self.rate, self.channels, self.sample_width) == (8000, 1, 2)


def audio_of(path: Path) -> Audio:
    """The header of a WAV file (stdlib `wave`) and the RMS of its 16-bit samples (no numpy)."""
    with wave.open(str(path), "rb") as wav:
        rate, channels, width, frames = wav.getframerate(), wav.getnchannels(), wav.getsampwidth(), wav.getnframes()
        data = wav.readframes(frames)
    samples = array.array("h")
    samples.frombytes(data[: len(data) // 2 * 2])
    if sys.byteorder == "big":  # pragma: no cover
        samples.byteswap()
    rms = math.sqrt(sum(s * s for s in samples) / len(samples)) if samples else 0.0
    return Audio(rate, channels, width, frames / rate if rate else 0.0, rms)


@pytest.fixture
def measure() -> Callable[[Path], Audio]:
    """`measure(path)`: the header and RMS of a WAV file."""
    return audio_of
