"""Runtime speech for text that comes from a backend: rendered once, kept on disk.

A text gets the sound name `tts/<hash>`, the same for the same text and language, so a name
or an instruction heard by many callers is rendered once. The hash is keyed with the
installation's secret (`ivr.install_key`): without it nobody can tell from a name, or from the
files, what was said, nor test a guess (a key holder's name) against them. The directory holds
`<hash>.wav` per text, the audio Asterisk plays as `tts/<hash>` (the `none` engine makes none),
and never the text: what this process rendered is known in memory only (`text_of`, for the
simulated Asterisk's transcript).

A failed render is logged and leaves no file: Asterisk then answers `-1` for the missing sound
and the call goes on. Renders run as subprocesses, never blocking the event loop; callers
asking for the same new text at once share one render. With `max_bytes`, the least recently
used renders (by modification time, refreshed on every use) are removed when the directory
grows past it. `.engine` records the engine that made the audio and the key that named it:
when either changes, the old audio is dropped and rendered again on demand. Texts an earlier
version kept in clear (`<hash>.txt`) are removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ivr.errors import TtsError
from ivr.install_key import install_key, keyed_digest
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
_HASH_LENGTH = 24
_TEXTS_KEPT = 10_000
"""Texts remembered per directory at most (the oldest go first): `text_of` is for transcripts."""

_texts: dict[Path, dict[str, str]] = {}
"""Per cache directory, the text of each sound rendered in this process. Shared by every
`TtsCache` on the directory: the simulated Asterisk reads through its own instance."""

log = get_logger("ivr.tts")


class TtsCache:
    """Sounds for backend text, under `directory` (Asterisk finds them as `tts/<hash>`).

    `engine` None makes no audio, only names (and `text_of`): what flow tests use. `key` names
    the sounds; by default the key of the data directory that holds `directory`
    (`<IVR_DATA_DIR>/tts`), made on first use.
    """

    def __init__(
        self, directory: Path, engine: TtsEngine | None = None, *, max_bytes: int | None = None,
        key: bytes | None = None,
    ) -> None:
        self.directory = directory
        self.engine = engine
        self.max_bytes = max_bytes
        self._key = key
        self._texts = _texts.setdefault(directory.absolute(), {})
        self._pending: dict[str, asyncio.Task[bool]] = {}
        self._known: set[str] = set()
        self._prepared: asyncio.Task[None] | None = None
        self._bytes = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> TtsCache:
        """`<IVR_DATA_DIR>/tts` with the engine of `IVR_TTS_ENGINE`, bounded by `IVR_TTS_CACHE_MB`."""
        return cls(settings.data_dir / "tts", engine_from_settings(settings),
                   max_bytes=int(settings.tts_cache_mb * 1024 * 1024), key=install_key(settings.data_dir))

    def sound_name(self, text: str, language: str) -> str:
        """`tts/<hash>`: a digest of the text and language keyed with the installation's key."""
        return SOUND_PREFIX + keyed_digest(self._install_key(), f"{language}\n{text}", _HASH_LENGTH)

    def wav_path(self, sound: str) -> Path:
        """Where the audio of a `tts/<hash>` sound is (or would be)."""
        return self.directory / (sound.removeprefix(SOUND_PREFIX) + ".wav")

    async def render(self, text: str, language: str) -> str:
        """The sound name for `text`, rendering it first when it is new.

        Callers asking for the same new text at once share one render. A render that fails
        is logged; the name is returned all the same (the sound is then missing).
        """
        name = self.sound_name(text, language)
        if not (name in self._known and self._touch(name)):
            task = self._pending.get(name)
            if task is None:
                task = asyncio.get_running_loop().create_task(self._produce(name, text, language))
                self._pending[name] = task
                task.add_done_callback(lambda _: self._pending.pop(name, None))
            if not await asyncio.shield(task):
                return name
            self._known.add(name)
        self._remember(name, text)
        return name

    def text_of(self, sound: str) -> str | None:
        """The text of a `tts/<hash>` sound rendered by this process, or None (not rendered, or
        rendered elsewhere: the text is not kept on disk)."""
        return self._texts.get(sound)

    # -- inside ---------------------------------------------------------------------------

    def _install_key(self) -> bytes:
        if self._key is None:
            self._key = install_key(self.directory.parent)
        return self._key

    def _remember(self, name: str, text: str) -> None:
        texts = self._texts
        texts.pop(name, None)
        texts[name] = text
        if len(texts) > _TEXTS_KEPT:
            del texts[next(iter(texts))]

    def _touch(self, name: str) -> bool:
        """Mark a render as just used; False when it is gone (evicted by another process)."""
        if self.engine is None:
            return True  # nothing on disk
        try:
            os.utime(self.wav_path(name))
        except FileNotFoundError:
            self._known.discard(name)
            return False
        return True

    async def _produce(self, name: str, text: str, language: str) -> bool:
        """Make the render if it is not on disk yet; False (logged) when it cannot be made.

        Never raises but for cancellation: a render must never take a call down.
        """
        wav = self.wav_path(name)
        started = time.perf_counter()
        try:
            await self._ensure_prepared()
            if self.engine is None:
                return True  # no audio to make
            if self._touch(name):
                return True  # rendered earlier, by this process or another (the audio appears whole)
            self.directory.mkdir(parents=True, exist_ok=True)  # even if removed while running
            await self.engine.render(text, language, wav)
            info = await asyncio.to_thread(wav_info, wav)
        except Exception as exc:  # noqa: BLE001 - a render must never take a call down
            if self.engine is not None:
                remove_quietly(wav)
            message = str(exc) if isinstance(exc, TtsError) else f"{type(exc).__name__}: {exc}"
            log.error("tts.render_failed", sound=name, language=language,
                      engine="none" if self.engine is None else self.engine.name, chars=len(text), error=message)
            return False
        log.info("tts.rendered", sound=name, language=language, engine=self.engine.name,
                 seconds=round(info.seconds, 2), ms=round((time.perf_counter() - started) * 1000, 1))
        self._bytes += _size(wav)
        if self.max_bytes is not None and self._bytes > self.max_bytes:
            try:
                evicted = await asyncio.to_thread(self._evict, keep=name)
            except OSError as exc:
                log.error("tts.evict_failed", error=str(exc))
            else:
                for gone in evicted:
                    self._known.discard(gone)
                    self._texts.pop(gone, None)
        return True

    async def _ensure_prepared(self) -> None:
        task = self._prepared
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = self._prepared = asyncio.get_running_loop().create_task(self._prepare())
        await asyncio.shield(task)

    async def _prepare(self) -> None:
        """Once per process: the directory, the engine marker, the size of what is there."""
        identity = "none" if self.engine is None else await _identity(self.engine)
        # Which key named the sounds, without telling anything about the key.
        identity += f" | names {keyed_digest(self._install_key(), ENGINE_MARKER, 16)}"
        await asyncio.to_thread(self._check_directory, identity)

    def _check_directory(self, identity: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for text in self.directory.glob("[!.]*.txt"):
            remove_quietly(text)  # a text kept in clear by an earlier version
        marker = self.directory / ENGINE_MARKER
        try:
            previous = marker.read_text(encoding="utf-8")
        except FileNotFoundError:
            previous = None
        if previous != identity:
            dropped = 0
            for wav in self.directory.glob("[!.]*.wav"):
                remove_quietly(wav)
                dropped += 1
            if dropped:
                engine_name = "none" if self.engine is None else self.engine.name
                log.info("tts.engine_changed", dropped=dropped, engine=engine_name)
            self._known.clear()
            tmp = temp_path(marker, "")
            tmp.write_text(identity, encoding="utf-8")
            tmp.replace(marker)
        self._bytes = sum(size for _, size, _ in self._scan())

    def _scan(self) -> list[tuple[str, int, float]]:
        """(hash, bytes, last use) of every render; stale temporary files are removed."""
        renders = []
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
                if suffix == "wav":
                    renders.append((stem, stat.st_size, stat.st_mtime))
        return renders

    def _evict(self, keep: str) -> list[str]:
        """Remove the least recently used renders but `keep`; the names of those removed."""
        renders = sorted(self._scan(), key=lambda r: r[2])
        total = sum(size for _, size, _ in renders)
        target = int(self.max_bytes * _LOW_WATER) if self.max_bytes is not None else total
        evicted = []
        for stem, size, _ in renders:
            if total <= target:
                break
            if SOUND_PREFIX + stem == keep:
                continue
            remove_quietly(self.directory / f"{stem}.wav")
            evicted.append(SOUND_PREFIX + stem)
            total -= size
        self._bytes = total
        log.info("tts.evicted", renders=len(evicted), bytes=total, bound=self.max_bytes)
        return evicted


async def _identity(engine: TtsEngine) -> str:
    try:
        return await engine.identity(None)
    except TtsError as exc:
        # The renders will fail and say why; the marker then just names the engine.
        log.error("tts.engine_unavailable", engine=engine.name, error=str(exc))
        return engine.name


def _size(path: Path) -> int:
    with contextlib.suppress(FileNotFoundError):
        return path.stat().st_size
    return 0
