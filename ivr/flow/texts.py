"""What the flow asks of a text-message backend: the caller's code, sent to the key holder's phone.

Kimoby implements it in the service (`ivr.backends.kimoby.KimobyTexts`); unset, the after-code
menu does not offer it.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["MAX_TEXT_CHARS", "CodeTexts", "code_text"]

MAX_TEXT_CHARS = 1600
"""A text message's body at most (Kimoby's limit, ten SMS segments)."""


class CodeTexts(Protocol):
    """Sends a key holder a text that holds their code."""

    async def send(self, key_number: int, text: str) -> str:
        """Text `text` to the key holder of `key_number`; the message's id.

        `SmsError` when no text can go: no such key holder at the provider, no cell phone,
        unsubscribed, or the provider failed. The text holds a code: never logged.
        """
        ...


def code_text(intro: str, code: str, instructions: str = "") -> str:
    """The body of the text: the words the caller heard before the code, the code, and its
    instructions, cut to fit `MAX_TEXT_CHARS` (the code always fits whole)."""
    head = f"{intro.strip()} {code}."
    rest = " ".join(instructions.split())
    if not rest:
        return head
    room = MAX_TEXT_CHARS - len(head) - 1
    if len(rest) > room:
        rest = rest[: max(0, room - 1)].rstrip() + "…"
    return f"{head} {rest}" if room > 1 else head
