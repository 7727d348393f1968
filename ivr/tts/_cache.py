"""Runtime speech for text that comes from a backend: rendered once, kept on disk.

A text gets the sound name `tts/<hash>`, the same for the same text and language, so a name
or an instruction heard by many callers is rendered once. Beside each render lies
`<hash>.txt` with the text itself: what the simulated Asterisk shows as heard, and what an
operator reads when a render sounds wrong.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

SOUND_PREFIX = "tts/"


class TtsCache:
    """Sounds for backend text, under `directory` (Asterisk finds them as `tts/<hash>`)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._pending: dict[str, asyncio.Task[str]] = {}
        self._known: set[str] = set()

    @staticmethod
    def sound_name(text: str, language: str) -> str:
        digest = hashlib.sha256(f"{language}\n{text}".encode()).hexdigest()[:24]
        return SOUND_PREFIX + digest

    async def render(self, text: str, language: str) -> str:
        """The sound name for `text`, rendering it first when it is new.

        Callers asking for the same new text at once share one render.
        """
        name = self.sound_name(text, language)
        if name in self._known:
            return name
        task = self._pending.get(name)
        if task is None:
            task = asyncio.get_running_loop().create_task(asyncio.to_thread(self._write, name, text))
            self._pending[name] = task
            task.add_done_callback(lambda _: self._pending.pop(name, None))
        await asyncio.shield(task)
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

    def _write(self, name: str, text: str) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / (name.removeprefix(SOUND_PREFIX) + ".txt")
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
        return name
