"""Text to speech: prompt texts to audio files, and backend text to cached sounds at run time.

- `TtsCache`: runtime renders of backend text as `tts/<hash>.wav`, the hash keyed, no text on disk.
- `build_prompts`: `ivr prompts build`, every prompt text as `<lang>/keybox/<id>.wav`.
- Engines (`EspeakEngine`, `CommandEngine`, `HttpEngine`, `engine_from_settings`): text in,
  an 8 kHz 16-bit mono WAV out.
- `media_routes`, `media_url`: the sounds over HTTP for an Asterisk on another host.
"""

from ivr.tts._audio import SAMPLE_RATE, WavInfo, wav_info
from ivr.tts._build import BuildSummary, build_prompts, prompt_path
from ivr.tts._cache import SOUND_PREFIX, TtsCache
from ivr.tts._engines import (
    ENGINES,
    CommandEngine,
    EspeakEngine,
    HttpEngine,
    TtsEngine,
    engine_from_settings,
    parse_command,
)
from ivr.tts._media import media_routes, media_url

__all__ = [
    "ENGINES",
    "SAMPLE_RATE",
    "SOUND_PREFIX",
    "BuildSummary",
    "CommandEngine",
    "EspeakEngine",
    "HttpEngine",
    "TtsCache",
    "TtsEngine",
    "WavInfo",
    "build_prompts",
    "engine_from_settings",
    "media_routes",
    "media_url",
    "parse_command",
    "prompt_path",
    "wav_info",
]
