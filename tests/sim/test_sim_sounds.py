"""The simulator knows a TTS render made by a service in another process by its audio alone."""

from __future__ import annotations

from pathlib import Path

from ivr.catalog import PromptCatalog, default_prompts_dir
from ivr.sim import SoundLibrary
from ivr.sim._sounds import TTS_ELSEWHERE
from ivr.tts import TtsCache


def test_a_render_of_another_process_exists_and_shows_as_spoken_text(tmp_path: Path) -> None:
    (tmp_path / "tts").mkdir()
    cache = TtsCache(tmp_path / "tts", key=b"k" * 32)
    name = cache.sound_name("Jane Agent", "en")
    cache.wav_path(name).write_bytes(b"RIFF")  # what `ivr serve` left; its text stayed in that process
    sounds = SoundLibrary(PromptCatalog.load(default_prompts_dir()), TtsCache(tmp_path / "elsewhere"))
    assert not sounds.exists(name, "en")
    sounds = SoundLibrary(PromptCatalog.load(default_prompts_dir()), TtsCache(tmp_path / "tts", key=b"k" * 32))
    assert sounds.exists(name, "en")
    event = sounds.describe(name)
    assert (event.kind, event.value) == ("tts", TTS_ELSEWHERE)
    assert not sounds.exists("tts/0000000000000000", "en")


def test_a_digit_rendered_by_another_process_is_heard_as_that_digit(tmp_path: Path) -> None:
    """Over Kazoo's pivot a code is one render per digit: the caller hears the digits."""
    (tmp_path / "tts").mkdir()
    service = TtsCache(tmp_path / "tts", key=b"k" * 32)
    for language, digit in (("en", "7"), ("fr", "0")):
        service.wav_path(service.sound_name(digit, language)).write_bytes(b"RIFF")
    sounds = SoundLibrary(PromptCatalog.load(default_prompts_dir()), TtsCache(tmp_path / "tts", key=b"k" * 32))
    assert [sounds.describe(service.sound_name(d, lang)).value for lang, d in (("en", "7"), ("fr", "0"))] == ["7", "0"]
    other_key = SoundLibrary(PromptCatalog.load(default_prompts_dir()), TtsCache(tmp_path / "tts", key=b"x" * 32))
    assert other_key.describe(service.sound_name("7", "en")).value == TTS_ELSEWHERE
