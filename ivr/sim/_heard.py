"""What a simulated callee heard, kept as a text file per outbound job (`ivr outbound --wait`
prints it): the simulated Asterisk's callees and the Kazoo sandbox's media side write it so."""

from __future__ import annotations

import re
from pathlib import Path

from ivr.logging import mask_code

__all__ = ["HEARD_FILES", "masked_lines", "write_heard"]

HEARD_FILES = 200
"""The newest transcripts kept in a folder: a long demo must not fill the disk."""

_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")
_DIGIT_RUN = re.compile(r"\d(?: ?\d)*")


def masked_lines(lines: list[str]) -> list[str]:
    """Every run of digits read out (``[digits] 4 7 1 9``) masked as codes are in logs."""
    prefix = "[digits] "
    return [prefix + _DIGIT_RUN.sub(lambda run: mask_code(run.group().replace(" ", "")), line[len(prefix):])
            if line.startswith(prefix) else line for line in lines]


def write_heard(folder: Path, job_id: str, lines: list[str]) -> None:
    """`<folder>/<job>.txt`, keeping only the newest `HEARD_FILES` transcripts there."""
    folder.mkdir(parents=True, exist_ok=True)
    name = _SAFE_NAME.sub("_", job_id)[:120].lstrip(".") or "call"
    (folder / f"{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    files = sorted(folder.glob("*.txt"), key=lambda path: (path.stat().st_mtime_ns, path.name), reverse=True)
    for old in files[HEARD_FILES:]:
        old.unlink(missing_ok=True)
