from __future__ import annotations

import pytest

from ivr.catalog import PromptCatalog
from ivr.sim import Event, SoundLibrary, Transcript
from ivr.tts import TtsCache


def transcript_of(*events: Event) -> Transcript:
    transcript = Transcript()
    for event in events:
        transcript.add(event)
    return transcript


def test_views() -> None:
    transcript = transcript_of(
        Event("answer"),
        Event("prompt", "welcome"),
        Event("digits", "4719283"),
        Event("tts", "Jane Agent"),
        Event("variable", "IVR_LAST_STEP=pin"),
        Event("variable", "IVR_LAST_STEP=menu=2"),
        Event("missing", "keybox/nope"),
        Event("transfer", "Queue(keybox-agents)"),
    )

    assert transcript.prompts == ["welcome"]
    assert transcript.said_digits == ["4719283"]
    assert transcript.spoken == ["Jane Agent"]
    assert transcript.variables == {"IVR_LAST_STEP": "menu=2"}
    assert transcript.missing == ["keybox/nope"]
    assert transcript.transferred_to == "Queue(keybox-agents)"
    assert transcript.hung_up_by is None


def test_render_follows_the_call_language(catalog: PromptCatalog) -> None:
    transcript = transcript_of(
        Event("answer"),
        Event("prompt", "welcome"),
        Event("language", "fr"),
        Event("prompt", "welcome"),
        Event("pressed", "123456#"),
        Event("silence"),
        Event("digits", "4719"),
        Event("tts", "Jane Agent"),
        Event("hangup", "service"),
    )
    transcript.note("something odd")

    assert transcript.render(catalog, "en") == [
        "[answer]",
        f'[prompt] welcome  "{catalog.text("welcome", "en")}"',
        "[language] fr",
        f'[prompt] welcome  "{catalog.text("welcome", "fr")}"',
        "[pressed] 123456#",
        "[silence]",
        "[digits] 4 7 1 9",
        '[tts] "Jane Agent"',
        "[hangup] service",
        "[note] something odd",
    ]
    assert transcript.render()[1] == "[prompt] welcome"


def test_unknown_event_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown transcript event kind"):
        Event("shout", "hello")  # type: ignore[arg-type]


async def test_sound_library(catalog: PromptCatalog, tts: TtsCache) -> None:
    name = await tts.render("Jane Agent", "en")
    sounds = SoundLibrary(catalog, tts, others={"beep"})

    assert sounds.exists("keybox/welcome", "fr")
    assert not sounds.exists("keybox/welcome", "de")
    assert not sounds.exists("keybox/nonexistent", "en")
    assert sounds.exists(name, "en")
    assert not sounds.exists("tts/000000000000000000000000", "en")
    assert sounds.exists("beep", "en") and not sounds.exists("digits/1", "en")
    assert sounds.describe("keybox/welcome") == Event("prompt", "welcome")
    assert sounds.describe(name) == Event("tts", "Jane Agent")
    assert sounds.describe("beep") == Event("sound", "beep")
    assert sounds.samples("keybox/welcome", "en") > sounds.samples(name, "en") > 0
    assert not SoundLibrary(catalog).exists(name, "en")  # no TTS cache, no renders
