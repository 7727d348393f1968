"""The TTS settings: defaults that work on one machine, and one line naming a bad variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.errors import SettingsError
from ivr.settings import load_settings
from ivr.tts import CommandEngine, EspeakEngine, HttpEngine, engine_from_settings


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    assert settings.tts_engine == "espeak" and settings.tts_voices == {}
    assert settings.tts_cache_mb == 200 and settings.tts_timeout == 15
    assert settings.sounds_dir == tmp_path / "sounds"
    engine = engine_from_settings(settings)
    assert isinstance(engine, EspeakEngine) and engine.voice("fr") == "fr-fr"


def test_each_engine_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVR_TTS_VOICES", "en=en-gb, FR=fr-be")
    assert engine_from_settings(load_settings()).voice("fr") == "fr-be"  # type: ignore[union-attr]
    monkeypatch.setenv("IVR_TTS_ENGINE", "Command")
    monkeypatch.setenv("IVR_TTS_COMMAND", "pico2wave -l {voice} -w {out} {text}")
    command = engine_from_settings(load_settings())
    assert isinstance(command, CommandEngine)
    assert command.argv == ["pico2wave", "-l", "{voice}", "-w", "{out}", "{text}"]
    monkeypatch.setenv("IVR_TTS_ENGINE", "http")
    monkeypatch.setenv("IVR_TTS_URL", "http://tts.internal:5002/speak")
    http = engine_from_settings(load_settings())
    assert isinstance(http, HttpEngine) and http.url == "http://tts.internal:5002/speak"
    monkeypatch.setenv("IVR_TTS_ENGINE", "none")
    assert engine_from_settings(load_settings()) is None


@pytest.mark.parametrize(("overrides", "line"), [
    ({"tts_engine": "festival"}, "IVR_TTS_ENGINE=festival is not valid: expected espeak, command, http, or none"),
    ({"tts_engine": "command"}, "IVR_TTS_COMMAND= is not valid: expected a TTS command line"),
    ({"tts_engine": "command", "tts_command": "tts 'open"}, "IVR_TTS_COMMAND=tts 'open is not valid"),
    ({"tts_engine": "http"}, "IVR_TTS_URL=None is not valid: expected the URL a TTS service"),
    ({"tts_voices": "en-gb"}, "IVR_TTS_VOICES=en-gb is not valid: expected comma-separated language=voice pairs"),
    ({"tts_cache_mb": 0}, "IVR_TTS_CACHE_MB=0 is not valid: expected megabytes"),
])
def test_a_bad_value_is_one_line(overrides: dict[str, object], line: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(**overrides)
    assert str(caught.value).startswith(line) and "\n" not in str(caught.value)
