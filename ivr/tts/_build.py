"""`ivr prompts build`: the texts of `prompts/` as the sound files Asterisk plays.

Each prompt becomes `<out>/<lang>/keybox/<id>.wav`, 8 kHz 16-bit mono. `<out>/.manifest.json`
keeps, per file, a hash of its text and of the engine's identity (program, version, voice):
a file whose hash is unchanged is skipped, so a second build renders nothing and a changed
text or voice renders only what it changes. Generated audio is a build output, not committed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ivr.catalog import PROMPT_IDS, PromptCatalog
from ivr.errors import TtsError
from ivr.logging import get_logger
from ivr.tts._audio import remove_quietly, require_programs, temp_path, wav_info
from ivr.tts._engines import TtsEngine

MANIFEST = ".manifest.json"
_FORMAT = "wav-8000-s16-mono/1"
"""Part of every file's hash: a change of output format rebuilds everything."""

log = get_logger("ivr.tts")


def prompt_path(out: Path, language: str, prompt_id: str) -> Path:
    """`<out>/<lang>/keybox/<id>.wav`: where Asterisk finds `keybox/<id>` in `<lang>`."""
    return out / language / "keybox" / f"{prompt_id}.wav"


@dataclass
class BuildSummary:
    """What a build did: files written and skipped, and the seconds of audio of them all."""

    out: Path
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    audio_seconds: float = 0.0
    elapsed: float = 0.0

    def line(self) -> str:
        total = len(self.written) + len(self.skipped)
        return (f"{total} prompt sounds in {self.out}: {len(self.written)} written, {len(self.skipped)} skipped "
                f"(unchanged), {self.audio_seconds:.1f} s of audio, in {self.elapsed:.1f} s")


async def build_prompts(
    catalog: PromptCatalog, out: Path, engine: TtsEngine, *, languages: Iterable[str] | None = None,
    force: bool = False, jobs: int | None = None,
) -> BuildSummary:
    """Render every contract prompt of `languages` (default: every language of the catalog).

    Raises `TtsError` (one line) when a text is missing or a render fails; the files made
    until then stay, and are recorded in the manifest.
    """
    started = time.perf_counter()
    require_programs(engine.programs)
    chosen = list(dict.fromkeys(languages or catalog.languages))
    unknown = [lang for lang in chosen if lang not in catalog.texts]
    if unknown:
        raise TtsError(f"no prompt texts for language {unknown[0]!r} (found: {', '.join(catalog.languages)})")
    problems = [p for p in catalog.problems() if any(f"Language {lang!r}" in p for lang in chosen)]
    missing = [p for p in problems if "has no text" in p or "empty text" in p]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise TtsError(f"{missing[0]}{more}")

    manifest_path = out / MANIFEST
    manifest = {} if force else _read_manifest(manifest_path)
    summary = BuildSummary(out)
    semaphore = asyncio.Semaphore(jobs or min(8, os.cpu_count() or 2))

    async def one(language: str, identity: str, prompt_id: str) -> None:
        text = catalog.text(prompt_id, language)
        path = prompt_path(out, language, prompt_id)
        key = path.relative_to(out).as_posix()
        digest = hashlib.sha256(f"{_FORMAT}\n{identity}\n{text}".encode()).hexdigest()
        if manifest.get(key) == digest and path.is_file():
            try:
                summary.audio_seconds += wav_info(path).seconds
                summary.skipped.append(path)
                return
            except TtsError:
                pass  # a damaged file: render it again
        async with semaphore:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                await engine.render(text, language, path)
            except TtsError as exc:
                raise TtsError(f"cannot render {key}: {exc}") from None
            except OSError as exc:
                raise TtsError(f"cannot write {path}: {exc.strerror or exc}") from None
        summary.audio_seconds += wav_info(path).seconds
        summary.written.append(path)
        manifest[key] = digest

    try:
        for language in chosen:
            identity = await engine.identity(language)
            tasks = [asyncio.create_task(one(language, identity, prompt_id)) for prompt_id in PROMPT_IDS]
            try:
                await asyncio.gather(*tasks)
            except BaseException:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
    finally:
        if summary.written or (force and manifest):
            _write_manifest(manifest_path, manifest)
    summary.elapsed = time.perf_counter() - started
    log.info("tts.prompts_built", out=str(out), written=len(summary.written), skipped=len(summary.skipped),
             audio_seconds=round(summary.audio_seconds, 1))
    return summary


def _read_manifest(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    return {k: v for k, v in files.items() if isinstance(v, str)} if isinstance(files, dict) else {}


def _write_manifest(path: Path, files: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path, ".json")
    try:
        body = {"format": _FORMAT, "files": dict(sorted(files.items()))}
        tmp.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
        tmp.replace(path)
    finally:
        remove_quietly(tmp)
