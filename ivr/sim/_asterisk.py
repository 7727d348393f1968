"""One simulated call: the Asterisk side of an AGI session, answered as res_agi.c answers.

`SimulatedChannel` writes the environment, then reads the service's commands one line at a time
and answers each as Asterisk 20's res_agi.c does (`agi_handle_command` and the `handle_*`
functions), playing the caller's part where the command waits for the caller:

* Lines are read like res_agi's `fgets` into its 2048-byte buffer: only the trailing `\\n` is
  stripped, and a longer line is cut into 2047-byte commands. Words are split by `parse_args`
  (`ivr.transports.agi.commands.split_command`); the verb is matched case-insensitively, extra words ignored.
* An unknown verb gets `510 Invalid or unknown command`; a known verb with bad arguments the
  multi-line `520` usage (`_usage.py`). A real Asterisk command the simulator does not run also
  gets 510, with a note in the transcript.
* A missing sound: STREAM FILE answers `200 result=-1 endpos=<offset>`, GET DATA `200 result=-1`.
* A hang-up, by the caller during a command or by the service's HANGUP: the reply to that
  command comes first (`200 result=-1` or `200 result=1`), then on FastAGI the unsolicited
  `HANGUP` line that `run_agi` writes when it notices the hang-up. A caller who hangs up
  between commands (they gave up on the call, or hang up as `Caller.hangup_after` planned,
  e.g. while the service waits for a backend) gets only the `HANGUP` line, at once. From then
  on commands run in dead mode: those res_agi allows on a dead channel (SET/GET VARIABLE,
  VERBOSE, EXEC, NOOP) are answered, the others get `511 Command Not Permitted on a dead channel
  or intercept routine`. Classic AGI gets no `HANGUP` line: Asterisk sends the program SIGHUP
  instead (`signal_hangup`). With the channel variable `AGISIGHUP` false (`no`), neither.
* Closing the connection with the channel still up hands the caller to the dialplan: with
  `IVR_TRANSFER` set that is a transfer, otherwise the dialplan hangs up.

Nothing waits unboundedly: the live call ends after `timeout` (the caller gives up), a hung-up
call waits `close_wait` for the service to close, and a service gets `max_commands` commands.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping

from ivr.sim._callers import DTMF_KEYS, Caller, InputRequest
from ivr.sim._sounds import SoundLibrary
from ivr.sim._transcript import Event, Transcript
from ivr.sim._usage import usage_reply
from ivr.transports.agi import commands

__all__ = ["DEAD_CHANNEL", "TRANSFER_VARIABLE", "UNKNOWN_COMMAND", "SimulatedChannel"]

TRANSFER_VARIABLE = "IVR_TRANSFER"
"""Set by the service before it closes the connection without HANGUP, to hand the caller on."""

UNKNOWN_COMMAND = "510 Invalid or unknown command"
DEAD_CHANNEL = "511 Command Not Permitted on a dead channel or intercept routine"

_STATE_RING = 4  # AST_STATE_RING: an incoming call not answered yet
_STATE_UP = 6  # AST_STATE_UP

_COMMAND_BYTES = 2047  # res_agi reads a command with fgets into char buf[AGI_BUF_LEN = 2048]
READ_LIMIT = 64 * 1024
"""The line limit to give the channel's StreamReader: past it without a newline the peer is not AGI."""

_GET_DATA_MAX = 1024  # handle_getdata's max digits when none is given
_GET_DATA_FIRST_KEY_MS = 6000  # ast_app_getdata_full's first-key timeout when the timeout is 0
_SAFETY_MARGIN = 5.0  # added to the call's bounds for writes a stuck peer never drains

_INTEGER = re.compile(r"\s*[+-]?\d+")
_BLANKS = re.compile(r"[ \t]")  # parse_args separates words by spaces and tabs only

Handler = Callable[["SimulatedChannel", list[str]], Awaitable[str | None]]


class _Abort(Exception):
    """The peer broke the protocol beyond what Asterisk would put up with; the note says how."""


class SimulatedChannel:
    """The Asterisk end of one call over `reader`/`writer` (a FastAGI socket or a child's pipes).

    `environment` is what `agi_environment` builds; its `agi_network` key makes this FastAGI, its
    `agi_language` is the starting language. `answered` starts the channel up instead of
    ringing. `variables` are channel variables the dialplan set before AGI (e.g. `IVR_JOB_ID`).
    `turnarounds`, when given, receives for each command after the first the seconds between
    writing the previous reply and reading this command: the service's own time, the caller's
    thinking excluded. `signal_hangup` is how a classic AGI program gets Asterisk's SIGHUP.

    After `run`: `transcript`, `closed_by_service` (the service closed the connection, rather
    than the simulator giving up), `close_delay` (seconds from the hang-up to that close).
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        caller: Caller,
        sounds: SoundLibrary,
        environment: Mapping[str, str],
        answered: bool = False,
        variables: Mapping[str, str] | None = None,
        max_commands: int = 2000,
        timeout: float = 60.0,
        close_wait: float = 5.0,
        turnarounds: list[float] | None = None,
        signal_hangup: Callable[[], None] | None = None,
    ) -> None:
        self.transcript = Transcript()
        self.closed_by_service = False
        self.close_delay: float | None = None
        self._reader = reader
        self._writer = writer
        self._caller = caller
        self._sounds = sounds
        self._environment = dict(environment)
        self._network = environment.get("agi_network") == "yes"
        self._language = environment.get("agi_language") or "en"
        self._state = _STATE_UP if answered else _STATE_RING
        self._variables = dict(variables or {})
        self._max_commands = max_commands
        self._timeout = timeout
        self._close_wait = close_wait
        self._turnarounds = turnarounds
        self._signal_hangup = signal_hangup
        self._tells_hangup = not _ast_false(self._variables.get("AGISIGHUP", ""))
        self._live_until = 0.0
        self._planned_hangup: float | None = None  # when the caller means to hang up
        self._alive = True
        self._hung_up_at = 0.0
        self._hangup_due = False  # run_agi has yet to tell of the hang-up
        self._commands = 0
        self._replied_at: float | None = None
        self._chunks: list[bytes] = []
        self._noted_unanswered = False

    async def run(self) -> Transcript:
        """Play the whole session; never raises for anything the service does."""
        self._live_until = _now() + self._timeout
        try:
            async with asyncio.timeout(self._timeout + self._close_wait + _SAFETY_MARGIN):
                await self._send("".join(f"{key}: {value}\n" for key, value in self._environment.items()) + "\n")
                await self._serve()
        except TimeoutError:
            self.transcript.note("the service stopped reading the simulator's replies; the simulator gave up")
        except _Abort as abort:
            self.transcript.note(str(abort))
        except ConnectionError as error:
            self.transcript.note(f"the connection failed: {error!r}")
            self._service_closed()
        finally:
            self._writer.close()
        return self.transcript

    # -- the session ------------------------------------------------------------------------

    async def _serve(self) -> None:
        while True:
            if self._alive and _now() >= self._caller_leaves_at():
                await self._caller_leaves()  # while the service was busy, e.g. at a backend
            deadline = self._caller_leaves_at() if self._alive else self._hung_up_at + self._close_wait
            try:
                async with asyncio.timeout_at(deadline):
                    line = await self._next_command()
            except TimeoutError:
                if not self._alive:
                    self.transcript.note(f"the service did not close the connection within {self._close_wait:g} s")
                    return
                await self._caller_leaves()
                continue
            if line is None:
                self._service_closed()
                return
            await self._answer(line)

    async def _next_command(self) -> str | None:
        """The next command line as res_agi's fgets loop delivers it; None at end of stream."""
        if not self._chunks:
            try:
                data = await self._reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as end:
                if end.partial:
                    self.transcript.note("the service closed the connection in the middle of a command line")
                return None
            except asyncio.LimitOverrunError:
                raise _Abort(f"the service sent a line longer than {READ_LIMIT} bytes; the simulator hung up") from None
            self._chunks = [data[start : start + _COMMAND_BYTES] for start in range(0, len(data), _COMMAND_BYTES)]
        return self._chunks.pop(0).removesuffix(b"\n").decode("utf-8", errors="replace")

    async def _answer(self, line: str) -> None:
        if self._turnarounds is not None and self._replied_at is not None:
            self._turnarounds.append(_now() - self._replied_at)
        self._commands += 1
        if self._alive and self._commands > self._max_commands:
            self.transcript.note(f"the service sent more than {self._max_commands} commands: the caller hung up")
            await self._caller_hangs_up_between_commands()
        await self._reply(await self._execute(_words(line)) + "\n")
        self._replied_at = _now()

    async def _execute(self, argv: list[str]) -> str:
        found = _find(argv)
        if found is None:
            if _is_unsimulated(argv):
                self.transcript.note(f"{' '.join(argv[:3])}: a real Asterisk command the simulator does not run")
            return UNKNOWN_COMMAND
        name, handler, runs_dead = found
        if not self._alive and not runs_dead:
            return DEAD_CHANNEL
        reply = await handler(self, argv)
        return usage_reply(name) if reply is None else reply

    async def _send(self, text: str) -> None:
        self._writer.write(text.encode("utf-8"))
        await self._writer.drain()

    async def _reply(self, reply: str) -> None:
        """Send `reply`, then tell of a hang-up as run_agi does once it notices one: the `HANGUP`
        line on FastAGI, SIGHUP to a classic program."""
        due, self._hangup_due = self._hangup_due, False
        if due and self._network:
            reply += "HANGUP\n"
        if reply:
            await self._send(reply)
        if due and not self._network and self._signal_hangup is not None:
            self._signal_hangup()

    # -- hang-ups and the end of the session ------------------------------------------------

    def _hang_up(self, by: str) -> None:
        self._alive = False
        self._hung_up_at = _now()
        self._hangup_due = self._tells_hangup
        self._record(Event("hangup", by))

    async def _caller_hangs_up_between_commands(self) -> None:
        self._hang_up("caller")
        await self._reply("")

    def _caller_leaves_at(self) -> float:
        """When the caller ends the live call of their own accord: as planned, or giving up."""
        planned = self._planned_hangup
        return self._live_until if planned is None else min(planned, self._live_until)

    def _note_giving_up(self) -> None:
        """Note it when the caller's own end of the call is giving up on it, not a planned hang-up."""
        if self._planned_hangup is None or self._planned_hangup > self._live_until:
            self.transcript.note(f"the caller gave up: the call was still going after {self._timeout:g} s")

    async def _caller_leaves(self) -> None:
        self._note_giving_up()
        await self._caller_hangs_up_between_commands()

    def _hangs_up_on(self, sound: str) -> bool:
        """Whether the caller hangs up while `sound` plays; notes when they mean to hang up later."""
        later = self._caller.hangup_after(sound)
        if later is not None and self._planned_hangup is None:
            self._planned_hangup = _now() + later
        return self._caller.hangup_on(sound)

    def _service_closed(self) -> None:
        if self.closed_by_service:
            return
        self.closed_by_service = True
        if not self._alive:
            self.close_delay = _now() - self._hung_up_at
            return
        self._alive = False
        destination = self._variables.get(TRANSFER_VARIABLE)
        if destination:
            self._record(Event("transfer", destination))
        else:
            self._record(Event("hangup", "service"))
            self.transcript.note(
                f"the service closed the connection with the channel up and no {TRANSFER_VARIABLE}: "
                "the dialplan goes on and hangs up"
            )

    # -- what the caller hears and types ----------------------------------------------------

    def _record(self, event: Event) -> None:
        self.transcript.add(event)
        self._caller.observe(event)

    def _heard(self, event: Event) -> None:
        if self._state != _STATE_UP and not self._noted_unanswered:
            self._noted_unanswered = True
            self.transcript.note("sound played before ANSWER: a caller on an unanswered channel hears nothing")
        self._record(event)

    def _play(self, sound: str) -> bool:
        """Record `sound` as heard, or as missing; False when it does not exist."""
        if not self._sounds.exists(sound, self._language):
            self._record(Event("missing", sound))
            return False
        self._heard(self._sounds.describe(sound))
        return True

    async def _ask(self, request: InputRequest) -> str | None:
        """The caller's keys (DTMF only), or None when they hang up or give up on the call."""
        try:
            async with asyncio.timeout_at(self._caller_leaves_at()):
                keys = await self._caller.keys_for(request)
        except TimeoutError:
            self._note_giving_up()
            return None
        return None if keys is None else "".join(key for key in keys if key in DTMF_KEYS)

    def _typed(self, keys: str) -> None:
        self._record(Event("pressed", keys) if keys else Event("silence"))

    # -- the commands (res_agi.c handle_*) ---------------------------------------------------

    async def _cmd_answer(self, argv: list[str]) -> str | None:
        if self._state != _STATE_UP:
            self._state = _STATE_UP
            self._record(Event("answer"))
        return "200 result=0"

    async def _cmd_channel_status(self, argv: list[str]) -> str | None:
        if len(argv) == 2:
            return f"200 result={self._state}"
        if len(argv) == 3:
            return f"200 result={self._state}" if argv[2] == self._environment["agi_channel"] else "200 result=-1"
        return None

    async def _cmd_stream_file(self, argv: list[str]) -> str | None:
        if not 4 <= len(argv) <= 5:
            return None
        offset = _scan_int(argv[4]) if len(argv) == 5 else 0
        if offset is None:
            return None
        sound = argv[2]
        if not self._play(sound):
            return f"200 result=-1 endpos={offset}"
        samples = self._sounds.samples(sound, self._language)
        if self._hangs_up_on(sound):
            self._variables["PLAYBACKSTATUS"] = "FAILED"
            self._hang_up("caller")
            return f"200 result=-1 endpos={(offset + samples) // 2 if offset < samples else samples}"
        self._variables["PLAYBACKSTATUS"] = "SUCCESS"
        return f"200 result=0 endpos={samples}"

    async def _cmd_get_data(self, argv: list[str]) -> str | None:
        if len(argv) < 3:
            return None
        timeout = _atoi(argv[3]) if len(argv) >= 4 else 0
        max_digits = _atoi(argv[4]) if len(argv) >= 5 else _GET_DATA_MAX
        prompt = argv[2]
        if prompt:
            if not self._play(prompt):
                return "200 result=-1"
            if self._hangs_up_on(prompt):
                self._hang_up("caller")
                return "200 result=-1"
        if max_digits == 0:
            return "200 result=-1"
        keys = await self._ask(InputRequest("get_data", prompt or None, max_digits, _first_key_ms(timeout)))
        if keys is None:
            self._hang_up("caller")
            return "200 result=-1"
        self._typed(keys)
        entry, complete = typed_entry(keys, max_digits)
        return f"200 result={entry}" if complete else f"200 result={entry} (timeout)"

    async def _cmd_say_digits(self, argv: list[str]) -> str | None:
        if len(argv) != 4 or _scan_int(argv[2]) is None:
            return None
        self._heard(Event("digits", argv[2]))
        if any(self._hangs_up_on(f"digits/{digit}") for digit in argv[2]):
            self._hang_up("caller")
            return "200 result=-1"
        return "200 result=0"

    async def _cmd_wait_for_digit(self, argv: list[str]) -> str | None:
        if len(argv) != 4:
            return None
        timeout = _scan_int(argv[3])
        if timeout is None:
            return None
        keys = await self._ask(InputRequest("wait_for_digit", None, 1, timeout))
        if keys is None:
            self._hang_up("caller")
            return "200 result=-1"
        if not keys and timeout < 0:
            self.transcript.note("the caller stayed silent on a WAIT FOR DIGIT that never times out, and hung up")
            self._hang_up("caller")
            return "200 result=-1"
        self._typed(keys[:1])
        return f"200 result={ord(keys[0])}" if keys else "200 result=0"

    async def _cmd_set_variable(self, argv: list[str]) -> str | None:
        if len(argv) != 4:
            return None
        name, value = argv[2], argv[3]
        self._record(Event("variable", f"{name}={value}"))
        if name.upper() == "CHANNEL(LANGUAGE)":
            self._language = value
            self._record(Event("language", value))
        else:
            self._variables[name] = value
        return "200 result=1"

    async def _cmd_get_variable(self, argv: list[str]) -> str | None:
        if len(argv) != 3:
            return None
        value = self._lookup(argv[2])
        return "200 result=0" if value is None else f"200 result=1 ({value})"

    async def _cmd_hangup(self, argv: list[str]) -> str | None:
        if len(argv) > 2:
            return None
        if len(argv) == 2 and argv[1] != self._environment["agi_channel"]:
            return "200 result=-1"
        self._hang_up("service")
        return "200 result=1"

    async def _cmd_exec(self, argv: list[str]) -> str | None:
        if len(argv) < 2:
            return None
        self.transcript.note(f"EXEC {' '.join(argv[1:3])}: applications are not simulated; answered result 0")
        return "200 result=0"

    async def _cmd_verbose(self, argv: list[str]) -> str | None:
        return "200 result=1" if len(argv) >= 2 else None

    async def _cmd_noop(self, argv: list[str]) -> str | None:
        return "200 result=0"

    def _lookup(self, name: str) -> str | None:
        """GET VARIABLE: a few dialplan functions and builtins, then the channel's variables."""
        environment = self._environment
        if name.endswith(")"):
            function, _, argument = name[:-1].partition("(")
            functions = {
                ("CHANNEL", "language"): self._language,
                ("CHANNEL", "name"): environment["agi_channel"],
                ("CALLERID", "num"): _known(environment["agi_callerid"]),
                ("CALLERID", "name"): _known(environment["agi_calleridname"]),
            }
            return functions.get((function.upper(), argument.lower()))
        builtin = _BUILTIN_VARIABLES.get(name)
        return environment[builtin] if builtin else self._variables.get(name)


# Variables pbx_retrieve_variable computes from the channel, and where the environment has them.
_BUILTIN_VARIABLES = {
    "CHANNEL": "agi_channel",
    "CONTEXT": "agi_context",
    "EXTEN": "agi_extension",
    "PRIORITY": "agi_priority",
    "UNIQUEID": "agi_uniqueid",
}

# The commands the simulator runs, with res_agi's "runs on a dead channel" flag.
_COMMANDS: tuple[tuple[tuple[str, ...], Handler, bool], ...] = (
    (("answer",), SimulatedChannel._cmd_answer, False),
    (("channel", "status"), SimulatedChannel._cmd_channel_status, False),
    (("exec",), SimulatedChannel._cmd_exec, True),
    (("get", "data"), SimulatedChannel._cmd_get_data, False),
    (("get", "variable"), SimulatedChannel._cmd_get_variable, True),
    (("hangup",), SimulatedChannel._cmd_hangup, False),
    (("noop",), SimulatedChannel._cmd_noop, True),
    (("say", "digits"), SimulatedChannel._cmd_say_digits, False),
    (("set", "variable"), SimulatedChannel._cmd_set_variable, True),
    (("stream", "file"), SimulatedChannel._cmd_stream_file, False),
    (("verbose",), SimulatedChannel._cmd_verbose, True),
    (("wait", "for", "digit"), SimulatedChannel._cmd_wait_for_digit, False),
)

# The rest of res_agi.c's command table, and app_stack.c's GOSUB.
_UNSIMULATED: tuple[tuple[str, ...], ...] = tuple(
    tuple(command.split())
    for command in (
        "asyncagi break",
        "control stream file",
        "database del",
        "database deltree",
        "database get",
        "database put",
        "get full variable",
        "get option",
        "gosub",
        "receive char",
        "receive text",
        "record file",
        "say alpha",
        "say date",
        "say datetime",
        "say number",
        "say phonetic",
        "say time",
        "send image",
        "send text",
        "set autohangup",
        "set callerid",
        "set context",
        "set extension",
        "set music",
        "set priority",
        "speech activate grammar",
        "speech create",
        "speech deactivate grammar",
        "speech destroy",
        "speech load grammar",
        "speech recognize",
        "speech set",
        "speech unload grammar",
        "tdd mode",
    )
)


# Both tables by their first word, so finding a command costs a comparison or two.
_BY_FIRST_WORD = {words[0]: [entry for entry in _COMMANDS if entry[0][0] == words[0]] for words, _, _ in _COMMANDS}
_UNSIMULATED_BY_FIRST_WORD = {
    words[0]: [other for other in _UNSIMULATED if other[0] == words[0]] for words in _UNSIMULATED
}


def _words(line: str) -> list[str]:
    """The command's words as parse_args splits them; plain lines (the usual case) the fast way."""
    if '"' in line or "\\" in line:
        return commands.split_command(line)
    return [word for word in _BLANKS.split(line) if word]


def _matches(argv: list[str], words: tuple[str, ...]) -> bool:
    """res_agi's find_command(argv, 0): all the command's words first, case-insensitive."""
    return len(argv) >= len(words) and all(arg.lower() == word for arg, word in zip(argv, words, strict=False))


def _find(argv: list[str]) -> tuple[str, Handler, bool] | None:
    for words, handler, runs_dead in _BY_FIRST_WORD.get(argv[0].lower(), ()) if argv else ():
        if _matches(argv, words):
            return " ".join(words), handler, runs_dead
    return None


def _is_unsimulated(argv: list[str]) -> bool:
    candidates = _UNSIMULATED_BY_FIRST_WORD.get(argv[0].lower(), []) if argv else []
    return any(_matches(argv, words) for words in candidates)


def typed_entry(keys: str, max_digits: int) -> tuple[str, bool]:
    """ast_readstring: digits up to `#` or `max_digits` (complete), else a timeout with what came."""
    entry = ""
    for key in keys:
        if key == "#":
            return entry, True
        entry += key
        if len(entry) >= max_digits:
            return entry, True
    return entry, False


def _first_key_ms(timeout: int) -> int:
    """ast_app_getdata_full's wait for the first key: 0 means its default, negative for ever."""
    if timeout > 0:
        return timeout
    return _GET_DATA_FIRST_KEY_MS if timeout == 0 else -1


def _scan_int(text: str) -> int | None:
    """sscanf("%d"): leading blanks, a sign, digits; anything may follow. None when no number."""
    match = _INTEGER.match(text)
    return int(match[0]) if match else None


def _atoi(text: str) -> int:
    """atoi: like `_scan_int`, but 0 when there is no number."""
    return _scan_int(text) or 0


def _now() -> float:
    return asyncio.get_running_loop().time()


def _ast_false(value: str) -> bool:
    """Asterisk's ast_false: how `AGISIGHUP=no` turns the hang-up signal off."""
    return value.strip().lower() in ("no", "false", "n", "f", "0", "off")


def _known(value: str) -> str:
    return "" if value == "unknown" else value
