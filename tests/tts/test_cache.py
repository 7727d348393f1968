"""The runtime cache: one render per text, shared by concurrent callers, bounded, never fatal."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path

from structlog.testing import capture_logs

from ivr.settings import load_settings
from ivr.tts import CommandEngine, EspeakEngine, TtsCache


def files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name != ".engine")


async def test_a_render_is_a_wav_and_nothing_else(tmp_path: Path, fake_tts, measure: Callable) -> None:
    cache = TtsCache(tmp_path / "tts", fake_tts.engine())
    name = await cache.render("Press the power button.", "en")
    digest = name.removeprefix("tts/")
    assert name == cache.sound_name("Press the power button.", "en") and len(digest) == 24
    assert files(cache.directory) == [f"{digest}.wav"]
    assert cache.wav_path(name) == cache.directory / f"{digest}.wav"
    assert measure(cache.wav_path(name)).is_phone_format
    assert cache.text_of(name) == "Press the power button."
    assert cache.text_of("tts/000000000000000000000000") is None and cache.text_of("keybox/welcome") is None


async def test_the_cache_is_no_oracle_of_what_was_said(tmp_path: Path, fake_tts) -> None:
    """Nothing on disk holds the text, and a guess cannot be tested against a name without the
    installation's key: a plain hash of the guess is not the name, another key names it otherwise."""
    text = "Jane Agent"
    cache = TtsCache(tmp_path / "tts", fake_tts.engine())
    name = await cache.render(text, "en")
    for path in cache.directory.rglob("*"):
        assert b"Jane" not in path.read_bytes(), path.name
    digest = name.removeprefix("tts/")
    assert digest != hashlib.sha256(f"en\n{text}".encode()).hexdigest()[:24]
    assert (tmp_path / "install.key").stat().st_mode & 0o777 == 0o600, "the data directory's key named it"
    assert TtsCache(tmp_path / "tts", key=b"k" * 32).sound_name(text, "en") != name


async def test_texts_an_earlier_version_kept_in_clear_are_removed(tmp_path: Path, fake_tts) -> None:
    directory = tmp_path / "tts"
    directory.mkdir()
    old = hashlib.sha256(b"en\nJane Agent").hexdigest()[:24]
    (directory / f"{old}.txt").write_text("Jane Agent")
    (directory / f"{old}.wav").write_bytes(b"RIFF")
    await TtsCache(directory, fake_tts.engine()).render("Someone Else", "en")
    assert not (directory / f"{old}.txt").exists() and not (directory / f"{old}.wav").exists()


async def test_another_cache_on_the_directory_in_this_process_knows_the_text(tmp_path: Path, fake_tts) -> None:
    """The simulated Asterisk reads through its own `TtsCache(<data>/tts)`: it learns texts in memory."""
    name = await TtsCache(tmp_path / "tts", fake_tts.engine()).render("Jane Agent", "en")
    assert TtsCache(tmp_path / "tts").text_of(name) == "Jane Agent"
    assert TtsCache(tmp_path / "elsewhere").text_of(name) is None


async def test_a_second_render_is_a_hit_even_in_another_process(tmp_path: Path, fake_tts) -> None:
    cache = TtsCache(tmp_path / "tts", fake_tts.engine())
    first = await cache.render("Jane Agent", "en")
    assert await cache.render("Jane Agent", "en") == first
    assert len(fake_tts.calls) == 1
    assert await TtsCache(tmp_path / "tts", fake_tts.engine()).render("Jane Agent", "en") == first
    assert len(fake_tts.calls) == 1, "a new cache on the same directory finds the render on disk"
    assert await cache.render("Jane Agent", "fr") != first, "another language is another sound"
    assert len(fake_tts.calls) == 2


async def test_concurrent_renders_of_one_text_share_one_engine_call(tmp_path: Path, fake_tts) -> None:
    cache = TtsCache(tmp_path / "tts", fake_tts.engine("--sleep", "0.2"))
    names = await asyncio.gather(*(cache.render("Jane Agent", "en") for _ in range(20)))
    assert len(set(names)) == 1
    assert len(fake_tts.calls) == 1


async def test_a_render_does_not_block_the_event_loop(tmp_path: Path, fake_tts) -> None:
    """The engine waits at a gate only this event loop can open: a render that blocked the loop
    would hold the engine until its timeout and fail, and the gate would see it only afterwards."""
    reached = asyncio.Event()
    opened = asyncio.Event()

    async def gate(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        reached.set()
        await opened.wait()
        writer.write(b"go")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(gate, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    cache = TtsCache(tmp_path / "tts", fake_tts.engine("--gate", f"127.0.0.1:{port}"))
    async with server:
        render = asyncio.create_task(cache.render("Jane Agent", "en"))
        await asyncio.wait_for(reached.wait(), 10)
        assert not render.done(), "the loop served the gate while the engine ran"
        opened.set()
        name = await asyncio.wait_for(render, 10)
    assert cache.text_of(name) == "Jane Agent" and cache.wav_path(name).exists()


async def test_a_failed_render_leaves_no_file_and_is_tried_again(tmp_path: Path, fake_tts) -> None:
    failing = TtsCache(tmp_path / "tts", fake_tts.engine("--fail"))
    with capture_logs() as logs:
        name = await failing.render("Jane Agent", "en")
    assert name == failing.sound_name("Jane Agent", "en"), "the call goes on with the (missing) sound"
    assert files(failing.directory) == []
    assert failing.text_of(name) is None, "the simulated Asterisk then finds the sound missing, as Asterisk would"
    await failing.render("Jane Agent", "en")
    assert len(fake_tts.calls) == 2, "a failure is not cached"
    [failed] = [e for e in logs if e["event"] == "tts.render_failed"]
    assert failed["log_level"] == "error" and failed["sound"] == name and "no such voice" in failed["error"]
    assert "Jane" not in str(failed), "the text itself (a name) is not logged"


async def test_a_missing_program_is_logged_not_raised(tmp_path: Path) -> None:
    cache = TtsCache(tmp_path / "tts", CommandEngine("/nonexistent/tts-program -w {out} {text}"))
    with capture_logs() as logs:
        name = await cache.render("Jane Agent", "en")
    assert cache.text_of(name) is None and files(cache.directory) == []
    assert any("is not installed" in e.get("error", "") for e in logs)


async def test_the_none_engine_keeps_the_text_in_memory_only(tmp_path: Path) -> None:
    cache = TtsCache(tmp_path / "tts")
    name = await cache.render("Jane Agent", "en")
    assert files(cache.directory) == []
    assert cache.text_of(name) == "Jane Agent"


async def test_eviction_keeps_the_directory_under_the_bound_least_recently_used_first(
    tmp_path: Path, fake_tts
) -> None:
    engine = fake_tts.engine("--rate", "8000", "--channels", "1")
    probe = TtsCache(tmp_path / "probe", engine)
    one = probe.wav_path(await probe.render("word " * 4, "en")).stat().st_size
    bound = int(one * 3.5)
    cache = TtsCache(tmp_path / "tts", engine, max_bytes=bound)
    texts = [f"word {i} " + "word " * 2 for i in range(8)]
    names = []
    for i, text in enumerate(texts):
        names.append(await cache.render(text, "en"))
        if i >= 1:
            await cache.render(texts[0], "en")  # texts[0] stays the most recently used
        await asyncio.sleep(0.01)  # distinct modification times on any file system
        size = sum(p.stat().st_size for p in cache.directory.iterdir())
        assert size <= bound, (i, size, bound)
    kept = {name for name in names if cache.wav_path(name).exists()}
    assert names[0] in kept and names[-1] in kept
    assert names[1] not in kept and len(kept) < len(names)
    for name in names:
        assert cache.wav_path(name).exists() == (cache.text_of(name) is not None), "audio and text go together"
    calls = len(fake_tts.calls)
    await cache.render(texts[1], "en")
    assert len(fake_tts.calls) == calls + 1, "an evicted text is rendered again"


async def test_a_new_engine_drops_audio_of_the_old_one(tmp_path: Path, fake_tts) -> None:
    first = TtsCache(tmp_path / "tts", fake_tts.engine("--rate", "16000"))
    await first.render("Jane Agent", "en")
    await TtsCache(tmp_path / "tts", fake_tts.engine("--rate", "16000")).render("Jane Agent", "en")
    assert len(fake_tts.calls) == 1
    await TtsCache(tmp_path / "tts", fake_tts.engine("--rate", "22050")).render("Jane Agent", "en")
    assert len(fake_tts.calls) == 2


async def test_stale_temporary_files_are_cleaned_up(tmp_path: Path, fake_tts) -> None:
    directory = tmp_path / "tts"
    directory.mkdir()
    stale = directory / ".abc.123.deadbeef.tmp.wav"
    stale.write_bytes(b"half a render")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    await TtsCache(directory, fake_tts.engine()).render("Jane Agent", "en")
    assert not stale.exists()


async def test_from_settings_uses_espeak_by_default_and_renders_real_audio(
    tmp_path: Path, measure: Callable
) -> None:
    cache = TtsCache.from_settings(load_settings(data_dir=tmp_path, tts_cache_mb=5))
    assert isinstance(cache.engine, EspeakEngine)
    assert cache.directory == tmp_path / "tts" and cache.max_bytes == 5 * 1024 * 1024
    name = await cache.render("Press the power button, enter the code, then press enter.", "en")
    audio = measure(cache.wav_path(name))
    assert audio.is_phone_format and 2 < audio.seconds < 7 and audio.rms > 200
    assert TtsCache.from_settings(load_settings(data_dir=tmp_path, tts_engine="none")).engine is None
