"""Which sounds the simulated Asterisk has, and what each one says.

A real Asterisk answers STREAM FILE and GET DATA with `-1` when the file is missing in the
channel's language, exactly as for a hang-up, so the simulator must know which sounds exist:
the fixed prompts are `keybox/<id>` in every language the prompt catalog has a text for, TTS
renders are `tts/<hash>` wherever the TTS cache holds their text or their audio (a render made
by a service in another process: its text is not kept on disk, so the transcript shows it as
`TTS_ELSEWHERE`, except the ten digits, whose names the installation's key gives away: over
Kazoo's pivot a code is said as one render per digit, and the caller must hear it). Everything
else is missing unless listed in `others` (say a core sound such as `beep`).

Unlike Asterisk, which falls back to the default language's file when the channel's language
has none, a prompt missing in the channel's language is missing here: the contract wants every
prompt in every configured language, and a silent English fallback would hide the gap.
"""

from __future__ import annotations

from collections.abc import Collection

from ivr.catalog import PromptCatalog
from ivr.sim._transcript import PROMPT_PREFIX, Event
from ivr.tts import SOUND_PREFIX as TTS_PREFIX
from ivr.tts import TtsCache

__all__ = ["TTS_ELSEWHERE", "SoundLibrary"]

TTS_ELSEWHERE = "(text spoken by the service)"
"""What the transcript shows for a render whose text only the service that made it knows."""

SAMPLE_RATE = 8000
"""The sounds are 8 kHz: `endpos` in a STREAM FILE reply counts samples at this rate."""

_CHARACTERS_PER_SECOND = 14
"""About how fast a prompt is spoken; it only sizes `endpos`, which no flow should rely on."""


class SoundLibrary:
    """Answers "does this sound exist in this language?" and "what does it say?".

    TTS texts are read from the cache once and then kept, since a render never changes under
    its name; a render that does not exist yet is looked for again next time.
    """

    def __init__(self, catalog: PromptCatalog, tts: TtsCache | None = None, *, others: Collection[str] = ()) -> None:
        self._catalog = catalog
        self._tts = tts
        self._others = frozenset(others)
        self._tts_texts: dict[str, str] = {}
        self._digits_named = False

    def exists(self, name: str, language: str) -> bool:
        if name.startswith(PROMPT_PREFIX):
            return bool(self._catalog.texts.get(language, {}).get(name.removeprefix(PROMPT_PREFIX)))
        if name.startswith(TTS_PREFIX):
            return self._tts_text(name) is not None or self._rendered_elsewhere(name)
        return name in self._others

    def describe(self, name: str) -> Event:
        """The event for a sound that exists (`exists` is the caller's to check first)."""
        if name.startswith(PROMPT_PREFIX):
            return Event("prompt", name.removeprefix(PROMPT_PREFIX))
        if name.startswith(TTS_PREFIX):
            return Event("tts", self._tts_text(name) or TTS_ELSEWHERE)
        return Event("sound", name)

    def samples(self, name: str, language: str) -> int:
        """The sound's length in samples, estimated from what it says (one second if unknown)."""
        text = ""
        if name.startswith(PROMPT_PREFIX):
            text = self._catalog.texts.get(language, {}).get(name.removeprefix(PROMPT_PREFIX), "")
        elif name.startswith(TTS_PREFIX):
            text = self._tts_text(name) or ""
        seconds = len(text) / _CHARACTERS_PER_SECOND if text else 1.0
        return max(SAMPLE_RATE // 10, int(seconds * SAMPLE_RATE))

    def _rendered_elsewhere(self, name: str) -> bool:
        return self._tts is not None and self._tts.wav_path(name).is_file()

    def _tts_text(self, name: str) -> str | None:
        text = self._tts_texts.get(name)
        if text is None and self._tts is not None:
            text = self._tts.text_of(name)
            if text is not None:
                self._tts_texts[name] = text
            elif not self._digits_named:  # once, when a render made elsewhere first comes up
                self._digits_named = True
                self._tts_texts.update({self._tts.sound_name(digit, language): digit
                                        for language in self._catalog.languages for digit in "0123456789"})
                text = self._tts_texts.get(name)
        return text
