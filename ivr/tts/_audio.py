"""The sound format Asterisk plays, and the programs that make it.

Every engine ends with `to_phone_wav`: sox turns whatever the engine produced (any rate,
channel count or sample size it can read) into an 8 kHz, 16-bit, mono PCM WAV. sox runs in
repeatable mode (`-R`), so that its dither is seeded: the same input gives the same bytes.

Programs run with `asyncio.create_subprocess_exec`, from an argument list, never through a
shell, and never block the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ivr.errors import TtsError

SAMPLE_RATE = 8000
"""Hz: what Asterisk's `wav` format (signed linear, 8 kHz) plays without transcoding."""
SAMPLE_WIDTH = 2
CHANNELS = 1

INSTALL_HINT = {
    "espeak-ng": "install it with `apt-get install espeak-ng` (Debian/Ubuntu)",
    "sox": "install it with `apt-get install sox` (Debian/Ubuntu)",
}


@dataclass(frozen=True)
class WavInfo:
    rate: int
    channels: int
    sample_width: int
    frames: int

    @property
    def seconds(self) -> float:
        return self.frames / self.rate if self.rate else 0.0

    @property
    def is_phone_format(self) -> bool:
        return (self.rate, self.channels, self.sample_width) == (SAMPLE_RATE, CHANNELS, SAMPLE_WIDTH)


def wav_info(path: Path) -> WavInfo:
    """The header of a PCM WAV file; `TtsError` when it is not one."""
    try:
        with wave.open(str(path), "rb") as wav:
            return WavInfo(wav.getframerate(), wav.getnchannels(), wav.getsampwidth(), wav.getnframes())
    except (wave.Error, EOFError, OSError) as exc:
        raise TtsError(f"{path.name} is not a readable PCM WAV file: {exc}") from None


def temp_path(beside: Path, suffix: str = ".wav") -> Path:
    """A fresh name in `beside`'s directory (so a rename onto `beside` is atomic), hidden by a dot."""
    return beside.with_name(f".{beside.stem}.{os.getpid()}.{secrets.token_hex(4)}.tmp{suffix}")


def remove_quietly(*paths: Path) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def require_program(name: str) -> str:
    """The full path of `name`, or an `TtsError` that says how to install it."""
    found = shutil.which(name)
    if found is None:
        hint = INSTALL_HINT.get(name, "install it or fix PATH")
        raise TtsError(f"{name} is not installed (not found on PATH): {hint}")
    return found


def require_programs(names: Sequence[str]) -> None:
    """`TtsError` naming every program of `names` that is not on PATH, and how to install them."""
    missing = [name for name in dict.fromkeys(names) if shutil.which(name) is None]
    if not missing:
        return
    packages = [name for name in missing if name in INSTALL_HINT]
    others = [name for name in missing if name not in INSTALL_HINT]
    hints = []
    if packages:
        hints.append(f"install with `apt-get install {' '.join(packages)}` (Debian/Ubuntu)")
    if others:
        hints.append(f"install {', '.join(others)} or fix IVR_TTS_COMMAND")
    verb = "is" if len(missing) == 1 else "are"
    raise TtsError(f"{' and '.join(missing)} {verb} not installed (not found on PATH): {'; '.join(hints)}")


async def run_program(
    argv: Sequence[str], *, stdin: bytes | None = None, timeout: float, what: str | None = None
) -> bytes:
    """Run `argv` (no shell) to its end within `timeout` seconds and return its stdout.

    A missing program, a non-zero exit or a timeout is an `TtsError` of one line; on timeout
    the program is killed.
    """
    what = what or Path(argv[0]).name
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError:
        hint = INSTALL_HINT.get(Path(argv[0]).name, "install it or fix PATH")
        raise TtsError(f"{what}: program {argv[0]!r} is not installed: {hint}") from None
    except PermissionError:
        raise TtsError(f"{what}: program {argv[0]!r} is not executable") from None
    try:
        out, err = await asyncio.wait_for(process.communicate(stdin), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise TtsError(f"{what} did not finish within {timeout:g} s") from None
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await asyncio.shield(process.wait())
        raise
    if process.returncode != 0:
        detail = err.decode(errors="replace").strip().splitlines()
        last = detail[-1][:200] if detail else "no message"
        raise TtsError(f"{what} failed (exit {process.returncode}): {last}")
    return out


async def to_phone_wav(source: Path, path: Path, *, timeout: float = 30.0) -> WavInfo:
    """Convert the audio file `source` into an 8 kHz 16-bit mono PCM WAV at `path`.

    `path` appears complete or not at all (written beside it, then renamed). sox reads the
    type from `source`'s extension, else from its header (WAV, FLAC, Ogg, AIFF, AU...).
    """
    sox = require_program("sox")
    tmp = temp_path(path)
    try:
        await run_program(
            [sox, "-R", "-V1", "-G", str(source),
             "-t", "wav", "-e", "signed-integer", "-b", str(8 * SAMPLE_WIDTH),
             "-c", str(CHANNELS), "-r", str(SAMPLE_RATE), str(tmp)],
            timeout=timeout, what="sox",
        )
        info = wav_info(tmp)
        if not info.is_phone_format:  # pragma: no cover - sox did not do what it was told
            raise TtsError(f"sox wrote {info.rate} Hz, {info.channels} channel(s), {8 * info.sample_width}-bit")
        if info.frames == 0:
            raise TtsError("the engine produced no audio (0 samples)")
        tmp.replace(path)
        return info
    finally:
        remove_quietly(tmp)
