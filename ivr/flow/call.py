"""The `Call` interface: what a transport (FastAGI, classic AGI, ARI) offers the call flow.

The flow never sees AGI syntax: it plays sounds by name, reads digits, sets variables and
hands the caller on. Each transport maps these few operations onto its protocol, and raises
`ivr.errors.ChannelHangupError` from any of them once the caller has hung up. While the flow
waits for something else (a backend), `wait_hangup` tells it at once that the caller has gone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Entry:
    """What the caller typed in answer to a question, without the terminating `#`."""

    digits: str
    timed_out: bool


class Call(Protocol):
    """One live phone call, as a transport presents it to the flow."""

    @property
    def call_id(self) -> str:
        """A unique id for the call (Asterisk's `agi_uniqueid` / the channel id)."""

    @property
    def route(self) -> str:
        """The route that was asked for: `keybox`, `identify`, `announce`."""

    @property
    def caller_id(self) -> str:
        """The calling number, or `unknown`."""

    @property
    def language(self) -> str:
        """The channel's language, as Asterisk uses it to find sounds (`en`, `fr`, `es`)."""

    @property
    def variables(self) -> dict[str, str]:
        """Parameters the dialplan passed with the call (a FastAGI `?query`, AGI arguments)."""

    async def answer(self) -> None:
        """Answer the channel unless it is up already."""

    async def play(self, sound: str, escape: str = "") -> str:
        """Play `sound` (e.g. `keybox/welcome`); return the escape digit that cut it short, or ''.

        A sound that does not exist is logged and skipped: the call goes on.
        """

    async def say_digits(self, digits: str, escape: str = "") -> str:
        """Speak `digits` one at a time in the channel's language; like `play` for escapes."""

    async def read_digits(self, sound: str, timeout_ms: int, max_digits: int) -> Entry:
        """Play `sound` and collect up to `max_digits` digits (`#` ends early)."""

    async def wait_for_digit(self, timeout_ms: int) -> str:
        """Wait for one key press; '' when none came in time."""

    async def set_variable(self, name: str, value: str) -> None:
        """Set a channel variable (what an agent's screen or the dialplan reads)."""

    async def set_language(self, language: str) -> None:
        """Switch the channel's language for the rest of the call."""

    async def transfer(self, destination: str) -> None:
        """Hand the caller on to `destination` (a dialplan application, e.g. `Queue(keybox-agents)`).

        The flow ends after this; the transport leaves the channel up for the destination.
        """

    async def hangup(self) -> None:
        """Hang up the channel."""

    async def wait_hangup(self) -> None:
        """Return once the caller has hung up (at once if they have already).

        Only for while no other operation runs: a transport may hold the channel meanwhile
        (FastAGI reads its socket for Asterisk's ``HANGUP`` line), so cancel it before the next
        operation; cancelling loses nothing. May raise `ivr.errors.ChannelProtocolError` when
        Asterisk sends what it never sends unasked.
        """
