"""Text to speech: prompt texts to audio files, and backend text to cached sounds at run time."""

from ivr.tts._cache import SOUND_PREFIX, TtsCache

__all__ = ["SOUND_PREFIX", "TtsCache"]
