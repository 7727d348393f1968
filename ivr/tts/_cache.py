"""Runtime speech for text that comes from a backend: rendered once, kept on disk.

A text gets the sound name `tts/<hash>`, the same for the same text and language, so a name
or an instruction heard by many callers is rendered once. The cache directory holds, per text:

- `<hash>.wav`: the audio, 8 kHz 16-bit mono, what Asterisk plays as `tts/<hash>` (with an
  engine; the `none` engine makes no audio);
- `<hash>.txt`: the text itself, written after the audio: what the simulated Asterisk shows as
  heard, and what an operator reads when a render sounds wrong.

A failed render is logged and leaves neither file: Asterisk then answers `-1` for the missing
sound and the call goes on. Renders run as subprocesses, never blocking the event loop; callers
asking for the same new text at once share one render. With `max_bytes`, the least recently
used renders (by modification time, refreshed on every use) are removed when the directory
grows past it. `.engine` records the engine that made the audio: when the engine or its voices
change, the old audio is dropped and rendered again on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ivr.errors import TtsError
from ivr.logging import get_logger
from ivr.tts._audio import remove_quietly, temp_path, wav_info
from ivr.tts._engines import TtsEngine, engine_from_settings

if TYPE_CHECKING:
    from ivr.settings import Settings

SOUND_PREFIX = "tts/"
ENGINE_MARKER = ".engine"
_STALE_TEMP_SECONDS = 3600
_LOW_WATER = 0.9
"""Eviction goes down to this share of the bound, so that it does not run at every render."""

log = get_logger("ivr.tts")


class TtsCache:
    """Sounds for backend text, under `directory` (Asterisk finds them as `tts/<hash>`).

    `engine` None keeps the text only (no audio): what flow tests use.
    """

    def __init__(self, directory: Path, engine: TtsEngine | None = None, *, max_bytes: int | None = None) -> None:
        self.directory = directory
        self.engine = engine
        self.max_bytes = max_bytes
        self._pending: dict[str, asyncio.Task[bool]] = {}
        self._known: set[str] = set()
        self._prepared: asyncio.Task[None] | None = None
        self._bytes = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> TtsCache:
        """`<IVR_DATA_DIR>/tts` with the engine of `IVR_TTS_ENGINE`, bounded by `IVR_TTS_CACHE_MB`."""
        return cls(settings.data_dir / "tts", engine_from_settings(settings),
                   max_bytes=int(settings.tts_cache_mb * 1024 * 1024))

    @staticmethod
    def sound_name(text: str, language: str) -> str:
        digest = hashlib.sha256(f"{language}\n{text}".encode()).hexdigest()[:24]
        return SOUND_PREFIX + digest

    def wav_path(self, sound: str) -> Path:
        """Where the audio of a `tts/<hash>` sound is (or would be)."""
        return self.directory / (sound.removeprefix(SOUND_PREFIX) + ".wav")

    async def render(self, text: str, language: str) -> str:
        """The sound name for `text`, rendering it first when it is new.

        Callers asking for the same new text at once share one render. A render that fails
        is logged; the name is returned all the same (the sound is then missing).
        """
        name = self.sound_name(text, language)
        if name in self._known and self._touch(name):
            return name
        task = self._pending.get(name)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._produce(name, text, language))
            self._pending[name] = task
            task.add_done_callback(lambda _: self._pending.pop(name, None))
        if await asyncio.shield(task):
            self._known.add(name)
        return name

    def text_of(self, sound: str) -> str | None:
        """The text behind a `tts/<hash>` sound, or None when there is no such render."""
        if not sound.startswith(SOUND_PREFIX):
            return None
        path = self.directory / (sound.removeprefix(SOUND_PREFIX) + ".txt")
        try:
            return path.read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError):
            return None

    # -- inside ---------------------------------------------------------------------------

    def _main_file(self, name: str) -> Path:
        suffix = ".txt" if self.engine is None else ".wav"
        return self.directory / (name.removeprefix(SOUND_PREFIX) + suffix)

    def _touch(self, name: str) -> bool:
        """Mark a render as just used; False when it is gone (evicted by another process)."""
        try:
            os.utime(self._main_file(name))
        except FileNotFoundError:
            self._known.discard(name)
            return False
        return True

    async def _produce(self, name: str, text: str, language: str) -> bool:
        """Make the render if it is not on disk yet; False (logged) when it cannot be made.

        Never raises but for cancellation: a render must never take a call down.
        """
        txt = self.directory / (name.removeprefix(SOUND_PREFIX) + ".txt")
        wav = self.wav_path(name)
        started = time.perf_counter()
        try:
            await self._ensure_prepared()
            if self._touch(name) and self.text_of(name) is not None:
                return True  # rendered earlier, by this process or another
            if self.engine is None:
                await asyncio.to_thread(_write_text, txt, text)
                return True
            self.directory.mkdir(parents=True, exist_ok=True)  # even if removed while running
            await self.engine.render(text, language, wav)
            info = await asyncio.to_thread(wav_info, wav)
            await asyncio.to_thread(_write_text, txt, text)
        except Exception as exc:  # noqa: BLE001 - a render must never take a call down
            if self.engine is not None:
                remove_quietly(wav, txt)
            message = str(exc) if isinstance(exc, TtsError) else f"{type(exc).__name__}: {exc}"
            log.error("tts.render_failed", sound=name, language=language,
                      engine="none" if self.engine is None else self.engine.name, chars=len(text), error=message)
            return False
        log.info("tts.rendered", sound=name, language=language, engine=self.engine.name,
                 seconds=round(info.seconds, 2), ms=round((time.perf_counter() - started) * 1000, 1))
        self._bytes += _size(wav) + _size(txt)
        if self.max_bytes is not None and self._bytes > self.max_bytes:
            try:
                await asyncio.to_thread(self._evict, keep=name.removeprefix(SOUND_PREFIX))
            except OSError as exc:
                log.error("tts.evict_failed", error=str(exc))
        return True

    async def _ensure_prepared(self) -> None:
        task = self._prepared
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = self._prepared = asyncio.get_running_loop().create_task(self._prepare())
        await asyncio.shield(task)

    async def _prepare(self) -> None:
        """Once per process: the directory, the engine marker, the size of what is there."""
        identity = "none" if self.engine is None else await _identity(self.engine)
        await asyncio.to_thread(self._check_directory, identity)

    def _check_directory(self, identity: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        marker = self.directory / ENGINE_MARKER
        try:
            previous = marker.read_text(encoding="utf-8")
        except FileNotFoundError:
            previous = None
        if previous != identity:
            if self.engine is not None:
                dropped = 0
                for wav in self.directory.glob("[!.]*.wav"):
                    remove_quietly(wav, wav.with_suffix(".txt"))
                    dropped += 1
                if dropped:
                    log.info("tts.engine_changed", dropped=dropped, engine=self.engine.name)
                self._known.clear()
            tmp = temp_path(marker, "")
            tmp.write_text(identity, encoding="utf-8")
            tmp.replace(marker)
        self._bytes = sum(size for _, size, _ in self._scan())

    def _scan(self) -> list[tuple[str, int, float]]:
        """(hash, bytes, last use) of every render; stale temporary files are removed."""
        groups: dict[str, list[float]] = {}
        now = time.time()
        with os.scandir(self.directory) as entries:
            for entry in entries:
                try:
                    stat = entry.stat()
                except FileNotFoundError:
                    continue
                if entry.name.startswith("."):
                    if ".tmp" in entry.name and now - stat.st_mtime > _STALE_TEMP_SECONDS:
                        remove_quietly(Path(entry.path))
                    continue
                stem, _, suffix = entry.name.rpartition(".")
                if suffix not in ("wav", "txt"):
                    continue
                group = groups.setdefault(stem, [0, 0.0])
                group[0] += stat.st_size
                group[1] = max(group[1], stat.st_mtime)
        return [(stem, int(size), used) for stem, (size, used) in groups.items()]

    def _evict(self, keep: str) -> None:
        renders = sorted(self._scan(), key=lambda r: r[2])
        total = sum(size for _, size, _ in renders)
        target = int(self.max_bytes * _LOW_WATER) if self.max_bytes is not None else total
        evicted = 0
        for stem, size, _ in renders:
            if total <= target:
                break
            if stem == keep:
                continue
            # The audio goes first: a text without audio is never taken for a render.
            remove_quietly(self.directory / f"{stem}.wav", self.directory / f"{stem}.txt")
            self._known.discard(SOUND_PREFIX + stem)
            total -= size
            evicted += 1
        self._bytes = total
        log.info("tts.evicted", renders=evicted, bytes=total, bound=self.max_bytes)


async def _identity(engine: TtsEngine) -> str:
    try:
        return await engine.identity(None)
    except TtsError as exc:
        # The renders will fail and say why; the marker then just names the engine.
        log.error("tts.engine_unavailable", engine=engine.name, error=str(exc))
        return engine.name


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path, ".txt")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    finally:
        remove_quietly(tmp)


def _size(path: Path) -> int:
    with contextlib.suppress(FileNotFoundError):
        return path.stat().st_size
    return 0
