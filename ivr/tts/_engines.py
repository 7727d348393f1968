"""TTS engines: text in, an 8 kHz 16-bit mono WAV out.

An engine is anything with `name`, `identity(language)` and `async render(text, language,
path)`. `render` leaves at `path` a complete sound in the phone format, or nothing, and raises
`TtsError` (one line) when it cannot. `identity` names everything that changes the audio (the
program and its version, the voice, the template or URL): a sound rendered under another
identity is rendered again.

- `espeak` (the default): espeak-ng, free and on every Debian, in a voice per language.
- `command`: any program, from a template such as `pico2wave -l {voice} -w {out} {text}`.
- `http`: a TTS service that answers a POST of the text with audio.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import httpx

from ivr.errors import TtsError
from ivr.settings import PLACEHOLDERS, parse_command
from ivr.tts._audio import remove_quietly, require_program, run_program, temp_path, to_phone_wav

if TYPE_CHECKING:
    from ivr.settings import Settings

__all__ = [
    "ENGINES",
    "CommandEngine",
    "EspeakEngine",
    "HttpEngine",
    "TtsEngine",
    "engine_from_settings",
    "parse_command",
]

ENGINES = ("espeak", "command", "http", "none")

ESPEAK_VOICES: Mapping[str, str] = {"en": "en-us", "fr": "fr-fr", "es": "es-419"}
"""espeak-ng voices (`espeak-ng --voices`) for the prompt languages: North American English,
French of France (espeak-ng has no Canadian French) and Latin American Spanish."""

ESPEAK_SPEED = 160
"""Words per minute: a little slower than espeak-ng's 175, for a phone line."""

_PLACEHOLDER = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS))
MAX_AUDIO_BYTES = 50 * 1024 * 1024
"""A TTS service's answer larger than this is refused (an hour of 8 kHz audio is 58 MB)."""


class TtsEngine(Protocol):
    """What `TtsCache` and `ivr prompts build` need of an engine."""

    name: str
    programs: tuple[str, ...]
    """The programs `render` runs, which must be installed."""

    async def identity(self, language: str | None = None) -> str:
        """What shapes the audio of `language` (None: of every language)."""
        ...

    async def render(self, text: str, language: str, path: Path) -> None: ...


class EspeakEngine:
    """espeak-ng, converted to the phone format by sox."""

    name = "espeak"
    programs: tuple[str, ...] = ("espeak-ng", "sox")

    def __init__(self, voices: Mapping[str, str] | None = None, *, speed: int = ESPEAK_SPEED,
                 timeout: float = 15.0) -> None:
        self.voices = {**ESPEAK_VOICES, **(voices or {})}
        self.speed = speed
        self.timeout = timeout
        self._version: str | None = None
        self._installed: frozenset[str] | None = None

    def voice(self, language: str) -> str:
        return self.voices.get(language, language)

    async def identity(self, language: str | None = None) -> str:
        if self._version is None:
            out = await run_program([require_program("espeak-ng"), "--version"], timeout=self.timeout)
            found = re.search(r"\d+\.\d+(?:\.\d+)?", out.decode(errors="replace"))
            self._version = f"espeak-ng {found.group() if found else '?'}"
        if language is not None:
            await self._check_voice(language)
        return f"espeak | {self._version} | voice={_voices(self.voices, language)} | speed={self.speed}"

    async def _check_voice(self, language: str) -> None:
        """espeak-ng speaks an unknown voice in its default one, silently: refuse it here instead."""
        if self._installed is None:
            out = await run_program([require_program("espeak-ng"), "--voices"], timeout=self.timeout)
            self._installed = _espeak_voices(out.decode(errors="replace"))
        voice = self.voice(language)
        if voice.split("+")[0].lower() not in self._installed:
            raise TtsError(f"espeak-ng has no voice {voice!r} for language {language!r} "
                           "(`espeak-ng --voices` lists them; IVR_TTS_VOICES chooses one)")

    async def render(self, text: str, language: str, path: Path) -> None:
        espeak = require_program("espeak-ng")
        await self._check_voice(language)
        raw = temp_path(path, ".espeak.wav")
        try:
            # The text goes on stdin: never parsed as an option, whatever it starts with.
            await run_program(
                [espeak, "-v", self.voice(language), "-s", str(self.speed), "-w", str(raw), "--stdin"],
                stdin=text.encode(), timeout=self.timeout, what="espeak-ng",
            )
            await to_phone_wav(raw, path, timeout=self.timeout)
        finally:
            remove_quietly(raw)


def _espeak_voices(listing: str) -> frozenset[str]:
    """Every name `espeak-ng -v` takes, from `espeak-ng --voices`: languages, voice names, files."""
    names: set[str] = set()
    for line in listing.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 5:
            names.update(part.lower() for part in (parts[1], parts[3], parts[4]))
            names.update(code.lower() for code in re.findall(r"\(([\w-]+) \d+\)", line))
    return frozenset(names)


def _voices(voices: Mapping[str, str], language: str | None, default: str | None = None) -> str:
    if language is None:
        return ",".join(f"{lang}={voice}" for lang, voice in sorted(voices.items()))
    return voices.get(language, language if default is None else default)


class CommandEngine:
    """Any TTS program, run from a template split like a shell would (`shlex`), without a shell.

    Placeholders, each replaced inside one argument: `{text}` the text (without it, the text
    goes to the program's stdin), `{out}` a `.wav` file the program writes (without it, the
    program's stdout is the audio), `{voice}` the voice of the language (`IVR_TTS_VOICES`, else
    the language code), `{lang}` the language code. The audio may be any rate, channel count or
    format sox reads.
    """

    name = "command"

    def __init__(self, template: str, voices: Mapping[str, str] | None = None, *, timeout: float = 30.0) -> None:
        try:
            self.argv = parse_command(template)
        except ValueError as exc:
            raise TtsError(f"IVR_TTS_COMMAND: {exc}") from None
        self.template = template
        self.programs: tuple[str, ...] = (self.argv[0], "sox")
        self.voices = dict(voices or {})
        self.timeout = timeout

    def voice(self, language: str) -> str:
        return self.voices.get(language, language)

    async def identity(self, language: str | None = None) -> str:
        voice = _voices(self.voices, language, default=language or "")
        return f"command | {self.template} | voice={voice}"

    async def render(self, text: str, language: str, path: Path) -> None:
        raw = temp_path(path, ".raw.wav")
        values = {"{text}": text, "{out}": str(raw), "{voice}": self.voice(language), "{lang}": language}
        argv = [self._fill(arg, values) for arg in self.argv]
        takes_text = "{text}" in self.template
        writes_file = "{out}" in self.template
        try:
            out = await run_program(
                argv, stdin=None if takes_text else text.encode(), timeout=self.timeout,
                what=f"IVR_TTS_COMMAND ({Path(argv[0]).name})",
            )
            if not writes_file:
                if not out:
                    raise TtsError(f"IVR_TTS_COMMAND ({Path(argv[0]).name}) wrote no audio on stdout")
                raw.write_bytes(out)
            elif not raw.exists():
                raise TtsError(f"IVR_TTS_COMMAND ({Path(argv[0]).name}) wrote no file at {{out}}")
            await to_phone_wav(raw, path, timeout=self.timeout)
        finally:
            remove_quietly(raw)

    @staticmethod
    def _fill(arg: str, values: Mapping[str, str]) -> str:
        # One pass: a text that holds "{voice}" stays as it is.
        return _PLACEHOLDER.sub(lambda m: values[m.group()], arg)


_AUDIO_TYPES = {
    "audio/wav": ".wav", "audio/x-wav": ".wav", "audio/wave": ".wav", "audio/vnd.wave": ".wav",
    "audio/flac": ".flac", "audio/x-flac": ".flac", "audio/ogg": ".ogg", "audio/aiff": ".aiff",
    "audio/x-aiff": ".aiff", "audio/basic": ".au", "audio/mpeg": ".mp3",
}


class HttpEngine:
    """A TTS service over HTTP.

    It POSTs `{"text": ..., "language": ..., "voice": ...}` (JSON; `voice` only when
    `IVR_TTS_VOICES` names one) to `url` and expects 200 with the audio as the body: WAV at any
    rate, or FLAC, Ogg, AIFF, AU (by `Content-Type`, else by the file's header). One connection
    per render: renders are rare, being cached.
    """

    name = "http"
    programs: tuple[str, ...] = ("sox",)

    def __init__(self, url: str, voices: Mapping[str, str] | None = None, *, timeout: float = 30.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.url = url
        self.voices = dict(voices or {})
        self.timeout = timeout
        self._transport = transport

    async def identity(self, language: str | None = None) -> str:
        return f"http | {self.url} | voice={_voices(self.voices, language, default='')}"

    async def render(self, text: str, language: str, path: Path) -> None:
        body: dict[str, str] = {"text": text, "language": language}
        if language in self.voices:
            body["voice"] = self.voices[language]
        raw = temp_path(path, ".download")
        try:
            suffix = await self._download(body, raw)
            typed = raw.with_name(raw.name + suffix)
            raw.replace(typed)
            raw = typed
            await to_phone_wav(raw, path, timeout=self.timeout)
        finally:
            remove_quietly(raw)

    async def _download(self, body: dict[str, str], raw: Path) -> str:
        where = f"TTS service {self.url}"
        try:
            async with httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout), transport=self._transport,
                headers={"User-Agent": "keybox-ivr", "Accept": "audio/wav, audio/*"},
            ) as client, client.stream("POST", self.url, content=json.dumps(body).encode(),
                                       headers={"Content-Type": "application/json"}) as response:
                if response.status_code != 200:
                    raise TtsError(f"{where} answered HTTP {response.status_code}")
                size = 0
                with raw.open("wb") as file:
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > MAX_AUDIO_BYTES:
                            raise TtsError(f"{where} answered more than {MAX_AUDIO_BYTES // 2**20} MB")
                        file.write(chunk)
                if size == 0:
                    raise TtsError(f"{where} answered an empty body")
                content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        except httpx.TimeoutException:
            raise TtsError(f"{where} did not answer within {self.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise TtsError(f"{where} cannot be reached: {type(exc).__name__}: {exc}") from None
        return _AUDIO_TYPES.get(content_type, "")


def engine_from_settings(settings: Settings) -> TtsEngine | None:
    """The engine `IVR_TTS_ENGINE` names, configured from the settings; None for `none`."""
    voices = settings.tts_voices
    match settings.tts_engine:
        case "espeak":
            return EspeakEngine(voices, timeout=settings.tts_timeout)
        case "command":
            return CommandEngine(settings.tts_command, voices, timeout=settings.tts_timeout)
        case "http":
            return HttpEngine(str(settings.tts_url), voices, timeout=settings.tts_timeout)
        case _:
            return None
