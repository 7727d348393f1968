"""The person on the phone: what they type when asked, and when they hang up.

The simulated Asterisk asks the caller only at GET DATA and WAIT FOR DIGIT; sounds always play
to the end unless the caller hangs up during one. A caller may also hang up a while after a
sound, whatever is going on then: a question, or nothing (the service busy at a backend). A
`ScriptedCaller` answers from a key buffer (end-to-end tests, the load benchmark); an
`InteractiveCaller` asks a person at a terminal.
"""

from __future__ import annotations

import asyncio
import os
import sys
import termios
import threading
import tty
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, Self, TextIO

from ivr.catalog import PromptCatalog
from ivr.sim._transcript import PROMPT_PREFIX, Event, render_event

__all__ = ["DTMF_KEYS", "Caller", "InputRequest", "InteractiveCaller", "ScriptedCaller"]

DTMF_KEYS = frozenset("0123456789*#ABCD")

_SILENT = "_"
_HANG_UP = "!"
_CTRL_D = "\x04"  # what end of input is on a terminal in cbreak mode


@dataclass(frozen=True, slots=True)
class InputRequest:
    """What the service is asking for.

    `sound` is GET DATA's prompt (None for WAIT FOR DIGIT or an empty prompt); `max_digits` is 1
    for WAIT FOR DIGIT; `timeout_ms` is how long Asterisk waits for the first key, -1 for ever.
    """

    kind: Literal["get_data", "wait_for_digit"]
    sound: str | None
    max_digits: int
    timeout_ms: int


class Caller(Protocol):
    """The caller side of a simulated call."""

    async def keys_for(self, request: InputRequest) -> str | None:
        """The keys typed for this request (`#` included if typed), '' for silence, None to hang up.

        The channel applies Asterisk's rules to them: an entry ends at `#` or at `max_digits`,
        otherwise it times out with what was typed; keys past the end are lost.
        """
        ...

    def hangup_on(self, sound: str) -> bool:
        """Whether the caller hangs up while `sound` plays (`digits/<d>` for each SAY DIGITS digit)."""
        ...

    def hangup_after(self, sound: str) -> float | None:
        """Seconds after `sound` starts at which the caller hangs up, whatever is going on then;
        None when they do not mean to. Asked as `hangup_on` is; the first plan made holds."""
        ...

    def observe(self, event: Event) -> None:
        """Told every transcript event as it happens."""
        ...


class ScriptedCaller:
    """A caller typing from a buffer of keys, consumed across the call's input requests.

    In `keys`: DTMF keys, `_` (the caller falls silent: this request times out with what was typed
    so far), `!` (hang up at this request); whitespace is ignored. For GET DATA the caller types
    until `#`, `max_digits` keys or a `_`; a `#` right after a full entry is typed too (a habit
    that costs nothing: Asterisk drops a key that arrives between commands). WAIT FOR DIGIT takes
    one key. Once the buffer is empty every request times out in silence.

    `hangup_on` is a prompt id (hang up while `keybox/<id>` plays), `digits` (during the first
    SAY DIGITS) or `tts` (during the first TTS sound). With `hangup_delay` the caller hangs up
    that many seconds after that sound starts instead, whatever is going on then (after typing
    their answer to a question it asks, say). `think` gives the seconds to wait before
    answering each input request.
    """

    def __init__(
        self, keys: str = "", hangup_on: str | None = None, think: Callable[[], float] | None = None,
        hangup_delay: float | None = None,
    ) -> None:
        buffer = "".join(keys.split())
        unknown = set(buffer) - DTMF_KEYS - {_SILENT, _HANG_UP}
        if unknown:
            raise ValueError(f"not a key, `_` or `!`: {''.join(sorted(unknown))!r}")
        self._buffer = buffer
        self._position = 0
        self._hangup_on = hangup_on
        self._hangup_delay = hangup_delay
        self._think = think

    @property
    def remaining(self) -> str:
        """The keys not typed yet."""
        return self._buffer[self._position :]

    async def keys_for(self, request: InputRequest) -> str | None:
        if self._think is not None:
            await asyncio.sleep(self._think())
        typed = ""
        while self._position < len(self._buffer):
            key = self._buffer[self._position]
            self._position += 1
            if key == _HANG_UP:
                return None
            if key == _SILENT:
                break
            typed += key
            if key == "#" or request.kind == "wait_for_digit":
                break
            if len(typed) >= request.max_digits:
                if self.remaining.startswith("#"):
                    typed += "#"
                    self._position += 1
                break
        return typed

    def hangup_on(self, sound: str) -> bool:
        return self._hangup_delay is None and self._is_hangup_sound(sound)

    def hangup_after(self, sound: str) -> float | None:
        return self._hangup_delay if self._is_hangup_sound(sound) else None

    def _is_hangup_sound(self, sound: str) -> bool:
        match self._hangup_on:
            case None:
                return False
            case "digits" | "tts":
                return sound.startswith(self._hangup_on + "/")
            case prompt_id:
                return sound == PROMPT_PREFIX + prompt_id

    def observe(self, event: Event) -> None:
        """A script does not listen."""


class InteractiveCaller:
    """A person at a terminal: sees each event as it happens and types the keys, like a keypad.

    On a terminal each key counts as it is pressed, no Enter needed: used as a context manager,
    the caller puts the terminal in cbreak mode and restores it on leaving. Otherwise (a pipe, a
    file) each line is one answer. Either way a question waits as long as the line does
    (`InputRequest.timeout_ms`, again after each key, as Asterisk does), then goes on with what was
    typed; Enter on a terminal ends an entry early, end of input (or Ctrl-D) hangs up. Input is
    read by one daemon thread, so a blocked read never keeps the program from exiting.
    """

    def __init__(
        self,
        catalog: PromptCatalog | None = None,
        *,
        input_stream: TextIO | None = None,
        output: TextIO | None = None,
        language: str = "en",
    ) -> None:
        self._catalog = catalog
        self._input = input_stream if input_stream is not None else sys.stdin
        self._output = output if output is not None else sys.stdout
        self._language = language
        self._keypad = _is_terminal(self._input)
        self._saved_mode: list[Any] | None = None
        self._items: asyncio.Queue[str | None] | None = None

    def __enter__(self) -> Self:
        if self._keypad:
            fd = self._input.fileno()
            self._saved_mode = termios.tcgetattr(fd)
            tty.setcbreak(fd, termios.TCSANOW)
        return self

    def __exit__(self, *_: object) -> None:
        if self._saved_mode is not None:
            termios.tcsetattr(self._input.fileno(), termios.TCSADRAIN, self._saved_mode)
            self._saved_mode = None

    async def keys_for(self, request: InputRequest) -> str | None:
        ask = "one key" if request.kind == "wait_for_digit" else f"up to {request.max_digits} keys, # to end"
        wait = "no time limit" if request.timeout_ms < 0 else f"{request.timeout_ms / 1000:g} s"
        keypad = self._keypad and self._saved_mode is not None
        how = "Ctrl-D hangs up" if keypad else "empty line = silence, end of input = hang up"
        self._print(f"  keys? ({ask}; {wait}; {how}) > ", end="")
        timeout = None if request.timeout_ms < 0 else request.timeout_ms / 1000
        keys = await (self._keypad_keys(request, timeout) if keypad else self._line_keys(timeout))
        self._print("")
        return keys

    async def _keypad_keys(self, request: InputRequest, timeout: float | None) -> str | None:
        typed = ""
        while True:
            try:
                key = await asyncio.wait_for(self._next(), timeout)
            except TimeoutError:
                return typed
            if key is None or key == _CTRL_D:
                return None
            if key in "\r\n":
                return typed
            key = key.upper()
            if key not in DTMF_KEYS:
                continue
            self._print(key, end="")
            typed += key
            if key == "#" or len(typed) >= request.max_digits:
                return typed

    async def _line_keys(self, timeout: float | None) -> str | None:
        try:
            line = await asyncio.wait_for(self._next(), timeout)
        except TimeoutError:
            return ""
        if line is None:
            return None
        return "".join(key for key in line.upper() if key in DTMF_KEYS)

    def hangup_on(self, sound: str) -> bool:
        return False

    def hangup_after(self, sound: str) -> float | None:
        return None

    def observe(self, event: Event) -> None:
        if event.kind == "language":
            self._language = event.value
        self._print(render_event(event, self._catalog, self._language))

    def _print(self, text: str, end: str = "\n") -> None:
        self._output.write(text + end)
        self._output.flush()

    async def _next(self) -> str | None:
        """The next key (keypad) or line; None at end of input."""
        if self._items is None:
            self._items = asyncio.Queue()
            read = self._read_keys if self._keypad and self._saved_mode is not None else self._read_lines
            threading.Thread(target=read, args=(asyncio.get_running_loop(), self._items), daemon=True).start()
        return await self._items.get()

    def _read_lines(self, loop: asyncio.AbstractEventLoop, items: asyncio.Queue[str | None]) -> None:
        for line in iter(self._input.readline, ""):
            if not _hand_over(loop, items, line):
                return
        _hand_over(loop, items, None)

    def _read_keys(self, loop: asyncio.AbstractEventLoop, items: asyncio.Queue[str | None]) -> None:
        fd = self._input.fileno()
        while True:
            try:
                chunk = os.read(fd, 64)
            except OSError:  # the terminal went away
                chunk = b""
            if not chunk:
                _hand_over(loop, items, None)
                return
            for key in chunk.decode("ascii", errors="ignore"):
                if not _hand_over(loop, items, key):
                    return


def _is_terminal(stream: TextIO) -> bool:
    try:
        return os.isatty(stream.fileno())
    except (AttributeError, OSError, ValueError):  # io.StringIO and friends have no descriptor
        return False


def _hand_over(loop: asyncio.AbstractEventLoop, items: asyncio.Queue[str | None], item: str | None) -> bool:
    """Pass a key or a line to the event loop; False once the loop is gone (the call is over)."""
    try:
        loop.call_soon_threadsafe(items.put_nowait, item)
    except RuntimeError:
        return False
    return True
