"""The engines make real phone audio: 8 kHz, mono, 16-bit, as long as the text, not silence."""

from __future__ import annotations

import asyncio
import io
import json
import math
import struct
import wave
from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ivr.embedded_http import EmbeddedHttpServer
from ivr.errors import IvrError
from ivr.tts import CommandEngine, EspeakEngine, HttpEngine

SILENCE_RMS = 200
"""Of 32767: speech measures in the thousands, silence (with sox's dither) next to nothing."""

SHORT = {"en": "Jane Agent.", "fr": "Jeanne Agent.", "es": "Juana Agente."}
LONG = {
    "en": "Press the power button, enter the code, then press enter. Your key will beep twice when it "
          "accepts the new code, and the display will show the date it expires.",
    "fr": "Appuyez sur le bouton d'alimentation, entrez le code, puis appuyez sur entrée. Votre clé émet "
          "deux bips quand elle accepte le nouveau code, et l'écran affiche sa date d'expiration.",
    "es": "Presione el botón de encendido, ingrese el código y luego presione entrar. Su llave emitirá dos "
          "pitidos cuando acepte el nuevo código, y la pantalla mostrará la fecha en que vence.",
}


def sane_duration(text: str, seconds: float) -> bool:
    """Spoken at 100 to 240 words a minute, plus up to a second of leading and trailing silence."""
    words = len(text.split())
    return 0.25 * words <= seconds <= 0.55 * words + 1.0


@pytest.mark.parametrize("language", ["en", "fr", "es"])
async def test_espeak_speaks_short_and_long_text_in_each_language(
    tmp_path: Path, measure: Callable, language: str
) -> None:
    engine = EspeakEngine()
    for size, text in (("short", SHORT[language]), ("long", LONG[language])):
        path = tmp_path / f"{size}.wav"
        await engine.render(text, language, path)
        audio = measure(path)
        assert audio.is_phone_format, audio
        assert sane_duration(text, audio.seconds), (size, len(text.split()), audio.seconds)
        assert audio.rms > SILENCE_RMS, audio
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.wav", "short.wav"], "no temporary file left"


async def test_espeak_is_reproducible_and_names_its_voice(tmp_path: Path) -> None:
    engine = EspeakEngine()
    await engine.render(SHORT["en"], "en", tmp_path / "a.wav")
    await engine.render(SHORT["en"], "en", tmp_path / "b.wav")
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    identity = await engine.identity("fr")
    assert "espeak-ng 1." in identity and "voice=fr-fr" in identity
    assert await EspeakEngine({"fr": "fr-be"}).identity("fr") != identity


async def test_espeak_unknown_voice_is_one_line_and_no_file(tmp_path: Path) -> None:
    with pytest.raises(IvrError, match=r"espeak-ng has no voice .no-such-voice.") as caught:
        await EspeakEngine({"en": "no-such-voice"}).render("Hello.", "en", tmp_path / "x.wav")
    assert "\n" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


async def test_command_engine_converts_any_rate_to_8k_mono(tmp_path: Path, fake_tts, measure: Callable) -> None:
    engine = fake_tts.engine("--rate", "22050", "--channels", "2")
    await engine.render("Press the power button.", "en", tmp_path / "out.wav")
    audio = measure(tmp_path / "out.wav")
    assert audio.is_phone_format and audio.rms > SILENCE_RMS
    assert audio.seconds == pytest.approx(0.3 + 0.3 * 4, abs=0.02)
    assert [call["text"] for call in fake_tts.calls] == ["Press the power button."]


async def test_command_engine_with_stdin_and_stdout(tmp_path: Path, fake_tts, measure: Callable) -> None:
    engine = fake_tts.engine("--rate", "16000", "--channels", "1", to_file=False, text_arg=False)
    await engine.render("Bonjour tout le monde", "fr", tmp_path / "out.wav")
    assert measure(tmp_path / "out.wav").is_phone_format
    assert fake_tts.calls[0]["text"] == "Bonjour tout le monde"


async def test_command_engine_passes_text_as_one_argument_never_to_a_shell(tmp_path: Path, fake_tts) -> None:
    text = "Jane's key; touch pwned && echo $(id) `id` > x | {voice} \"quoted\""
    engine = CommandEngine(fake_tts.template("--voice-of", "{voice}", "--lang", "{lang}"), {"fr": "fr-FR"})
    await engine.render(text, "fr", tmp_path / "out.wav")
    call = fake_tts.calls[0]
    assert call["text"] == text
    assert call["argv"][call["argv"].index("--voice-of") + 1] == "fr-FR"
    assert call["argv"][call["argv"].index("--lang") + 1] == "fr"
    assert not (tmp_path / "pwned").exists() and not (Path.cwd() / "pwned").exists()


async def test_a_failing_program_is_one_line_and_leaves_no_file(tmp_path: Path, fake_tts) -> None:
    out = tmp_path / "sounds"
    out.mkdir()
    with pytest.raises(IvrError, match=r"exit 3\): fake-tts: no such voice"):
        await fake_tts.engine("--fail").render("Hello there.", "en", out / "x.wav")
    assert list(out.iterdir()) == []


async def test_a_slow_program_is_killed_at_the_timeout(tmp_path: Path, fake_tts) -> None:
    engine = CommandEngine(fake_tts.template("--sleep", "5"), timeout=0.3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(IvrError, match=r"did not finish within 0\.3 s"):
        await engine.render("Hello.", "en", tmp_path / "x.wav")
    assert loop.time() - started < 2
    assert not (tmp_path / "x.wav").exists()


def test_a_command_that_cannot_be_split_is_refused() -> None:
    with pytest.raises(IvrError, match="IVR_TTS_COMMAND"):
        CommandEngine("pico2wave -w {out} 'unbalanced")
    with pytest.raises(IvrError, match="placeholder"):
        CommandEngine("{text} --out {out}")


def _tone_wav(rate: int, channels: int, seconds: float) -> bytes:
    frames = int(rate * seconds)
    samples = [int(9000 * math.sin(2 * math.pi * 300 * i / rate)) for i in range(frames) for _ in range(channels)]
    body = io.BytesIO()
    with wave.open(body, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(struct.pack(f"<{len(samples)}h", *samples))
    return body.getvalue()


class FakeTtsService:
    """A tiny TTS service on loopback: POST JSON text, answer a 16 kHz stereo WAV."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self.status = 200
        self.delay = 0.0
        self.content_type = "audio/wav"

    async def speak(self, request: Request) -> Response:
        body = json.loads(await request.body())
        self.requests.append(body)
        await asyncio.sleep(self.delay)
        if self.status != 200:
            return Response("engine down", status_code=self.status)
        audio = _tone_wav(16000, 2, 0.2 * len(body["text"].split()))
        return Response(audio, media_type=self.content_type)


@pytest.fixture
async def tts_service():
    service = FakeTtsService()
    async with EmbeddedHttpServer(Starlette(routes=[Route("/speak", service.speak, methods=["POST"])])) as server:
        service.url = server.url + "/speak"
        yield service


async def test_http_engine_posts_text_and_converts_the_answer(
    tmp_path: Path, tts_service: FakeTtsService, measure: Callable
) -> None:
    engine = HttpEngine(tts_service.url, {"es": "es-MX-Dalia"}, timeout=5)
    await engine.render("Presione uno para Juana", "es", tmp_path / "out.wav")
    audio = measure(tmp_path / "out.wav")
    assert audio.is_phone_format and audio.rms > SILENCE_RMS
    assert audio.seconds == pytest.approx(0.2 * 4, abs=0.02)
    assert tts_service.requests == [{"text": "Presione uno para Juana", "language": "es", "voice": "es-MX-Dalia"}]
    tts_service.content_type = "application/octet-stream"  # sox then reads the WAV header
    await engine.render("Hello there", "en", tmp_path / "other.wav")
    assert measure(tmp_path / "other.wav").is_phone_format
    assert tts_service.requests[-1] == {"text": "Hello there", "language": "en"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.wav", "out.wav"]


async def test_http_engine_errors_are_one_line_and_leave_no_file(tmp_path: Path, tts_service: FakeTtsService) -> None:
    tts_service.status = 503
    with pytest.raises(IvrError, match="answered HTTP 503"):
        await HttpEngine(tts_service.url, timeout=5).render("Hello.", "en", tmp_path / "x.wav")
    tts_service.status, tts_service.delay = 200, 0.4
    with pytest.raises(IvrError, match=r"did not answer within 0\.1 s"):
        await HttpEngine(tts_service.url, timeout=0.1).render("Hello.", "en", tmp_path / "x.wav")
    with pytest.raises(IvrError, match="cannot be reached"):
        await HttpEngine("http://127.0.0.1:9/speak", timeout=2).render("Hello.", "en", tmp_path / "x.wav")
    assert list(tmp_path.iterdir()) == []
