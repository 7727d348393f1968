"""`ivr prompts build`: every prompt of every language as a phone WAV, rebuilt only when it changes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from ivr.catalog import PROMPT_IDS, PromptCatalog, default_prompts_dir
from ivr.cli import cli
from ivr.errors import IvrError
from ivr.settings import load_settings
from ivr.tts import EspeakEngine, build_prompts, prompt_path


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, ["prompts", "build", *args], env=env, catch_exceptions=False)


def test_build_makes_every_prompt_of_every_language_then_skips_them(tmp_path: Path, measure: Callable) -> None:
    out = tmp_path / "sounds"
    first = run("--out", str(out), "--lang", "en,fr", "--lang", "es")
    assert first.exit_code == 0, first.output
    expected = {prompt_path(out, lang, pid) for lang in ("en", "fr", "es") for pid in PROMPT_IDS}
    assert set(out.rglob("*.wav")) == expected
    assert f"{len(expected)} written, 0 skipped" in first.output and "s of audio" in first.output
    for path in (prompt_path(out, "en", "welcome"), prompt_path(out, "fr", "goodbye"), prompt_path(out, "es", "press")):
        audio = measure(path)
        assert audio.is_phone_format and audio.seconds > 0.3 and audio.rms > 200, (path, audio)
    welcome = prompt_path(out, "en", "welcome").read_bytes()

    second = run("--out", str(out))
    assert second.exit_code == 0, second.output
    assert f"0 written, {len(expected)} skipped" in second.output
    assert prompt_path(out, "en", "welcome").read_bytes() == welcome


def test_the_default_output_is_ivr_sounds_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path / "data"))
    assert load_settings().sounds_dir == tmp_path / "data" / "sounds"
    monkeypatch.setenv("IVR_SOUNDS_DIR", str(tmp_path / "elsewhere"))
    welcome = prompt_path(tmp_path / "elsewhere", "es", "welcome")
    welcome.parent.mkdir(parents=True)
    welcome.write_bytes(b"an old file, not in the manifest")
    result = run("--lang", "es", "--engine", "espeak", "--force")
    assert result.exit_code == 0, result.output
    assert f"{len(PROMPT_IDS)} written, 0 skipped" in result.output
    assert welcome.read_bytes().startswith(b"RIFF")
    assert not (tmp_path / "data" / "sounds").exists()


async def test_a_changed_text_or_voice_renders_only_what_changed(tmp_path: Path) -> None:
    texts = dict(PromptCatalog.load(default_prompts_dir()).texts["en"])
    engine = EspeakEngine()
    out = tmp_path / "sounds"
    summary = await build_prompts(PromptCatalog({"en": texts}), out, engine)
    assert len(summary.written) == len(PROMPT_IDS) and summary.audio_seconds > 10
    manifest = json.loads((out / ".manifest.json").read_text())
    assert set(manifest["files"]) == {f"en/keybox/{pid}.wav" for pid in PROMPT_IDS}

    texts["welcome"] = "Welcome to the new key holder line."
    summary = await build_prompts(PromptCatalog({"en": texts}), out, engine)
    assert summary.written == [prompt_path(out, "en", "welcome")] and len(summary.skipped) == len(PROMPT_IDS) - 1

    prompt_path(out, "en", "goodbye").unlink()
    summary = await build_prompts(PromptCatalog({"en": texts}), out, engine)
    assert summary.written == [prompt_path(out, "en", "goodbye")], "a deleted file is made again"

    summary = await build_prompts(PromptCatalog({"en": texts}), out, EspeakEngine({"en": "en-gb"}))
    assert len(summary.written) == len(PROMPT_IDS), "another voice renders everything again"


async def test_a_missing_text_or_a_failed_render_is_one_line(tmp_path: Path, fake_tts) -> None:
    texts = dict(PromptCatalog.load(default_prompts_dir()).texts["en"])
    del texts["goodbye"]
    with pytest.raises(IvrError, match="Language 'en' has no text for prompt 'goodbye'"):
        await build_prompts(PromptCatalog({"en": texts}), tmp_path, fake_tts.engine())
    with pytest.raises(IvrError, match=r"cannot render en/keybox/\S+\.wav: .*no such voice"):
        await build_prompts(PromptCatalog.load(default_prompts_dir()), tmp_path, fake_tts.engine("--fail"),
                            languages=["en"])
    assert not list(tmp_path.rglob("*.wav"))


def test_missing_programs_say_how_to_install_them(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["prompts", "build", "--out", str(tmp_path)], env={"PATH": str(tmp_path)})
    assert result.exit_code == 1
    assert result.output.strip() == (
        "error: espeak-ng and sox are not installed (not found on PATH): "
        "install with `apt-get install espeak-ng sox` (Debian/Ubuntu)"
    )


def test_bad_choices_are_one_line(tmp_path: Path) -> None:
    unknown = run("--out", str(tmp_path), "--lang", "de")
    assert unknown.exit_code == 1 and unknown.output.startswith("error: no prompt texts for language 'de'")
    none = run("--out", str(tmp_path), env={"IVR_TTS_ENGINE": "none"})
    assert none.exit_code == 1 and "makes no audio" in none.output
    command = run("--out", str(tmp_path), "--engine", "command", env={"IVR_TTS_COMMAND": ""})
    assert command.exit_code == 2 and command.output.startswith("error: IVR_TTS_COMMAND= is not valid")
