"""What the caller heard and pressed during one simulated call, in order.

End-to-end tests assert on these views rather than on raw AGI lines, and `ivr call` prints them,
so each event names something a person on the phone would notice: a prompt, digits read out, a
name spoken by TTS, the keys typed, who hung up. Anything odd that is not an event (a command the
simulator does not run, a service that never closed the connection) goes to `Transcript.notes`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from ivr.catalog import PromptCatalog

__all__ = ["PROMPT_PREFIX", "Event", "EventKind", "Transcript", "render_event"]

PROMPT_PREFIX = "keybox/"
"""Fixed prompts are the sounds `keybox/<prompt-id>` (call-flow contract)."""

EventKind = Literal[
    "answer",  # the service answered the ringing channel
    "prompt",  # a fixed prompt played; value: the prompt id
    "digits",  # SAY DIGITS; value: the digits
    "tts",  # a TTS render played; value: its text
    "sound",  # any other sound that exists; value: its name
    "missing",  # a sound that does not exist (Asterisk answered -1); value: its name
    "pressed",  # the keys typed for one input request, `#` included
    "silence",  # the caller typed nothing before the timeout
    "variable",  # SET VARIABLE; value: NAME=value
    "language",  # the channel language changed; value: the new language
    "transfer",  # the service left the channel up for the dialplan; value: IVR_TRANSFER
    "hangup",  # value: `caller` or `service`
]
_KINDS = frozenset(get_args(EventKind))


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened on the line; `value` is empty for `answer` and `silence`."""

    kind: EventKind
    value: str = ""

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown transcript event kind: {self.kind!r}")


class Transcript:
    """The events of one call, with the views tests ask about most."""

    __slots__ = ("events", "notes")

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.notes: list[str] = []

    def __repr__(self) -> str:
        return f"Transcript({len(self.events)} events, {len(self.notes)} notes)"

    def add(self, event: Event) -> None:
        self.events.append(event)

    def note(self, text: str) -> None:
        """Remember something a test or a person should know that is not a caller-facing event."""
        self.notes.append(text)

    def _values(self, kind: EventKind) -> list[str]:
        return [event.value for event in self.events if event.kind == kind]

    @property
    def prompts(self) -> list[str]:
        """Prompt ids in the order they played (by STREAM FILE or as GET DATA's prompt)."""
        return self._values("prompt")

    @property
    def said_digits(self) -> list[str]:
        return self._values("digits")

    @property
    def spoken(self) -> list[str]:
        """The texts of the TTS sounds that played."""
        return self._values("tts")

    @property
    def missing(self) -> list[str]:
        """Sound names the service asked for that do not exist in the channel's language."""
        return self._values("missing")

    @property
    def variables(self) -> dict[str, str]:
        """Channel variables the service set; the last value wins."""
        pairs = (value.partition("=") for value in self._values("variable"))
        return {name: value for name, _, value in pairs}

    @property
    def transferred_to(self) -> str | None:
        return next(iter(self._values("transfer")), None)

    @property
    def hung_up_by(self) -> str | None:
        """`caller`, `service`, or None (still up, or handed on to the dialplan)."""
        return next(iter(self._values("hangup")), None)

    def render(self, catalog: PromptCatalog | None = None, language: str = "en") -> list[str]:
        """One line per event, then the notes; prompts show their text in the call's language.

        `language` is the language the call started in; `language` events switch it from there.
        """
        lines: list[str] = []
        for event in self.events:
            if event.kind == "language":
                language = event.value
            lines.append(render_event(event, catalog, language))
        lines.extend(f"[note] {text}" for text in self.notes)
        return lines


def render_event(event: Event, catalog: PromptCatalog | None, language: str) -> str:
    """The terminal line for one event (plain ASCII markers, so any terminal shows it)."""
    match event.kind:
        case "prompt":
            text = catalog.texts.get(language, {}).get(event.value) if catalog else None
            return f'[prompt] {event.value}  "{text}"' if text else f"[prompt] {event.value}"
        case "digits":
            return "[digits] " + " ".join(event.value)
        case "tts":
            return f'[tts] "{event.value}"'
        case "answer" | "silence":
            return f"[{event.kind}]"
        case _:
            return f"[{event.kind}] {event.value}"
