"""The telephony half of the simulated Asterisk's AMI: what an Originate does on the line.

The outcome of a call depends on the number dialled (the part of the Originate's `Channel`
between ``/`` and ``@``): see `DEFAULT_OUTCOMES`, overridden per number or per whole channel
by `outcomes`. Events follow Asterisk 22's order:

* ringing: ``Newchannel`` (state 0 Down), ``Newstate`` 5 Ringing;
* answered: ``Newstate`` 6 Up, ``OriginateResponse`` Success Reason 4, then the dialplan of
  the Originate's context runs, then ``Hangup`` (16 Normal Clearing);
* not answered: ``Hangup`` with the cause, then ``OriginateResponse`` Failure with the reason,
  its `Channel` the one asked for and its `Uniqueid` the ChannelId given or ``<unknown>``
  (main/manager.c `fast_originate`: the dialled channel is gone by then, main/pbx.c
  `pbx_outgoing_attempt`); a `failed` number creates no channel at all.

Dialplan contexts, as the shipped dialplans do: ``keybox-announce`` runs the ``announce`` route
over FastAGI (``announce?job=${IVR_JOB_ID}&attempt=${IVR_ATTEMPT_ID}``); ``keybox-bridge`` dials
``IVR_BRIDGE_DIAL`` from the agent's channel and, from its ``h`` extension, sends the user event
``KeyboxBridge`` (Attempt, Job, DialStatus). That event always precedes the agent leg's
``Hangup`` (``h`` runs before the channel is gone); the key holder's ``Hangup`` precedes it when
that leg was not answered (Dial returns once the leg is gone) and follows it when they talked.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from ivr.catalog import PromptCatalog
from ivr.logging import get_logger
from ivr.sim._ami_wire import Headers, event
from ivr.sim._callers import ScriptedCaller
from ivr.sim._heard import masked_lines, write_heard
from ivr.sim._place import CallResult, place_call
from ivr.sim._sounds import SoundLibrary

__all__ = ["ANNOUNCE_CONTEXT", "BRIDGE_CONTEXT", "DEFAULT_OUTCOMES", "AmiChannel", "AmiOriginate", "Outcome"]

log = get_logger("ivr.sim")

Outcome = Literal["answer", "busy", "noanswer", "congestion", "failed"]
_OUTCOMES = frozenset(get_args(Outcome))
DEFAULT_OUTCOMES: Mapping[str, Outcome] = {
    "5550101": "busy", "5550102": "noanswer", "5550103": "congestion", "5550104": "failed",
}
ANNOUNCE_CONTEXT = "keybox-announce"
BRIDGE_CONTEXT = "keybox-bridge"
BRIDGE_EVENT = "KeyboxBridge"

# OriginateResponse Reason: main/pbx.c `pbx_dial_reason` maps the dial result to an
# AST_CONTROL_* value (include/asterisk/frame.h): HANGUP 1, RINGING 3 (rang out), ANSWER 4,
# BUSY 5, CONGESTION 8, anything else 0.
REASON_HANGUP = 1
_REASONS: Mapping[Outcome, int] = {"answer": 4, "busy": 5, "noanswer": 3, "congestion": 8, "failed": 0}
# Hangup Cause / Cause-txt: include/asterisk/causes.h and main/channel.c `causes[]`.
NORMAL_CLEARING = 16
_CAUSE_TEXTS = {16: "Normal Clearing", 17: "User busy", 19: "User alerting, no answer",
                34: "Circuit/channel congestion"}
_CAUSES: Mapping[Outcome, int] = {"busy": 17, "noanswer": 19, "congestion": 34}
# ${DIALSTATUS} after Dial(): apps/app_dial.c.
_DIAL_STATUS: Mapping[Outcome, str] = {"answer": "ANSWER", "busy": "BUSY", "noanswer": "NOANSWER",
                                       "congestion": "CONGESTION", "failed": "CHANUNAVAIL"}
# include/asterisk/channelstate.h; names from main/channel.c `ast_state2str`.
STATE_DOWN, STATE_RINGING, STATE_UP = 0, 5, 6
_STATE_NAMES = {STATE_DOWN: "Down", STATE_RINGING: "Ringing", STATE_UP: "Up"}
_CALL = "call,all"  # the Privilege of call events (manager.c `authority_to_str`)


@dataclass(frozen=True)
class AmiOriginate:
    """One Originate as the simulator received it, and the outcome its number was given.

    `channel_id` is the ChannelId asked for ("" if none); `uniqueid` the one the channel got.
    """

    action_id: str
    channel: str
    context: str
    exten: str
    variables: Mapping[str, str]
    channel_id: str
    uniqueid: str
    outcome: Outcome
    is_async: bool
    caller_id: tuple[str, str] = ("", "")  # number, name
    timeout: float = 30.0  # seconds the callee may ring (the Originate's Timeout)


@dataclass(eq=False)
class AmiChannel:
    """A channel that exists now: what CoreShowChannels lists and the AMI Hangup action finds."""

    name: str
    uniqueid: str
    linkedid: str
    context: str
    exten: str
    caller_id: tuple[str, str]
    state: int = STATE_DOWN
    application: str = ""
    data: str = ""
    bridge_id: str = ""
    created: float = field(default_factory=time.monotonic)
    hangup_cause: int = NORMAL_CLEARING
    hangup_requested: asyncio.Event = field(default_factory=asyncio.Event)

    def request_hangup(self, cause: int) -> None:
        self.hangup_cause = cause
        self.hangup_requested.set()

    def headers(self) -> Headers:
        """main/manager_channels.c `ast_manager_build_channel_state_string_prefix`, unprefixed."""
        number, name = self.caller_id
        return [
            ("Channel", self.name), ("ChannelState", str(self.state)),
            ("ChannelStateDesc", _STATE_NAMES.get(self.state, f"Unknown ({self.state})")),
            ("CallerIDNum", number or "<unknown>"), ("CallerIDName", name or "<unknown>"),
            # pbx.c `pbx_outgoing_attempt` sets the connected line to the Originate's CallerID too
            ("ConnectedLineNum", number or "<unknown>"), ("ConnectedLineName", name or "<unknown>"),
            ("Language", "en"), ("AccountCode", ""), ("Context", self.context), ("Exten", self.exten),
            ("Priority", "1"), ("Uniqueid", self.uniqueid), ("Linkedid", self.linkedid),
        ]

    def duration(self) -> str:
        seconds = int(time.monotonic() - self.created)
        return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def dialled(channel: str) -> str:
    """``PJSIP/5551234@carrier`` → ``5551234``; ``PJSIP/agent1`` → ``agent1``."""
    return channel.partition("/")[2].partition("@")[0]


class _Pbx:
    """Channels, their outcomes and the dialplan; `SimulatedAmi` adds the manager connections."""

    def __init__(
        self, *, agi_address: str | None, sounds: SoundLibrary, catalog: PromptCatalog, ring_seconds: float,
        bridge_seconds: float, heard_dir: Path | None,
    ) -> None:
        self.agi_address = agi_address
        self.sounds = sounds
        self.catalog = catalog
        self.ring_seconds = ring_seconds
        self.bridge_seconds = bridge_seconds
        self.heard_dir = heard_dir
        self.answer_delay = 0.0
        self.outcomes: dict[str, str] = {}
        self.callee_digits: dict[str, str] = {}
        self.originates: list[AmiOriginate] = []
        self.calls: list[CallResult] = []
        self.channels: dict[str, AmiChannel] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._sequence = itertools.count(random.randrange(1, 100_000))

    def _broadcast(self, headers: Headers) -> None:
        raise NotImplementedError

    # -- public helpers ------------------------------------------------------------------------

    def outcome_for(self, channel: str) -> Outcome:
        """The outcome of dialling `channel`: `outcomes` by whole channel or number, else the rules."""
        number = dialled(channel)
        chosen = self.outcomes.get(channel, self.outcomes.get(number))
        if chosen is None:
            return DEFAULT_OUTCOMES.get(number, "answer")
        if chosen not in _OUTCOMES:
            log.error("ami_sim.bad_outcome", number=number, outcome=chosen)
            return "failed"
        return chosen  # type: ignore[return-value]  # checked against Outcome just above

    def find_channel(self, name_or_id: str) -> AmiChannel | None:
        """By channel name or Uniqueid (main/channel.c `ast_channel_get_by_name` tries both)."""
        return self.channels.get(name_or_id) or next(
            (channel for channel in self.channels.values() if channel.name.lower() == name_or_id.lower()), None)

    async def settled(self, timeout: float) -> None:
        """Until every call placed so far has ended; `TimeoutError` after `timeout` seconds."""
        async with asyncio.timeout(timeout):
            while self._tasks:
                await asyncio.wait(set(self._tasks))

    def new_uniqueid(self) -> str:
        """``<epoch>.<sequence>``, as Asterisk names channels with no system name."""
        return f"{int(time.time())}.{next(self._sequence)}"

    # -- placing calls -------------------------------------------------------------------------

    def place(self, originate: AmiOriginate, reply: Callable[[bool], None] | None = None) -> None:
        """Start the call in the background; `reply(answered)` once its outcome is known."""
        self.originates.append(originate)
        task = asyncio.create_task(self._run(originate, reply or (lambda _answered: None)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _stop_calls(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.channels.clear()

    async def _run(self, originate: AmiOriginate, reply: Callable[[bool], None]) -> None:
        outcome = originate.outcome
        if originate.uniqueid in self.channels:  # "Requested channel uniqueid already in use"
            outcome = "failed"
        if outcome == "failed":
            self._originate_response(originate, None, _REASONS["failed"], reply)
            return
        channel = self._new_channel(originate.channel, originate.uniqueid, originate)
        try:
            reason = await self._dial(channel, outcome, originate.timeout)
            if reason != _REASONS["answer"]:
                self._originate_response(originate, None, reason, reply)
                return
            self._originate_response(originate, channel, reason, reply)
            if originate.context == ANNOUNCE_CONTEXT:
                await self._announce(channel, originate)
            elif originate.context == BRIDGE_CONTEXT:
                await self._bridge(channel, originate)
            self._hang_up(channel, channel.hangup_cause)
        finally:
            self.channels.pop(channel.uniqueid, None)  # cancelled: gone without events

    def _new_channel(
        self, requested: str, uniqueid: str, originate: AmiOriginate, linkedid: str | None = None,
    ) -> AmiChannel:
        tech, _, resource = requested.partition("/")
        sequence = next(self._sequence)
        if tech.lower() == "local":
            name = f"{tech}/{resource}-{sequence:08x};1"  # core_local.c: the ;1 half is the originated one
        else:  # chan_pjsip.c names a channel after its endpoint: PJSIP/<endpoint>-%08x
            name = f"{tech}/{resource.partition('@')[2] or resource}-{sequence:08x}"
        channel = AmiChannel(name, uniqueid, linkedid or uniqueid, originate.context, originate.exten or "s",
                             originate.caller_id)
        self.channels[uniqueid] = channel
        self._emit("Newchannel", channel)
        return channel

    async def _dial(self, channel: AmiChannel, outcome: Outcome, limit: float, also: AmiChannel | None = None) -> int:
        """Ring `channel` and settle its outcome: the Reason (a leg not answered is hung up)."""
        self._set_state(channel, STATE_RINGING)
        ring = self.ring_seconds + (self.answer_delay if outcome == "answer" else 0.0)
        if ring > limit:
            outcome, ring = "noanswer", limit
        if await _hangup_within(ring, channel, also):
            self._hang_up(channel, channel.hangup_cause)
            return REASON_HANGUP
        if outcome == "answer":
            self._set_state(channel, STATE_UP)
            return _REASONS["answer"]
        self._hang_up(channel, _CAUSES[outcome])
        return _REASONS[outcome]

    def _originate_response(
        self, originate: AmiOriginate, channel: AmiChannel | None, reason: int, reply: Callable[[bool], None],
    ) -> None:
        """manager.c `fast_originate`; a synchronous Originate gets its Response instead."""
        reply(reason == _REASONS["answer"])
        if not originate.is_async:
            return
        number, name = originate.caller_id
        headers: Headers = [("ActionID", originate.action_id)] if originate.action_id else []
        headers += [
            ("Response", "Success" if channel else "Failure"),
            ("Channel", channel.name if channel else originate.channel),
            ("Context", originate.context), ("Exten", originate.exten), ("Reason", str(reason)),
            ("Uniqueid", channel.uniqueid if channel else originate.channel_id or "<unknown>"),
            ("CallerIDNum", number or "<unknown>"), ("CallerIDName", name or "<unknown>"),
        ]
        self._broadcast(event("OriginateResponse", _CALL, headers))

    # -- the dialplan --------------------------------------------------------------------------

    async def _announce(self, channel: AmiChannel, originate: AmiOriginate) -> None:
        """AGI(agi://<agi_address>/announce?job=…&attempt=…); no listener: AGI fails, hang up."""
        if self.agi_address is None:
            log.info("ami_sim.no_agi_address", uniqueid=channel.uniqueid)
            return
        query = {"job": originate.variables.get("IVR_JOB_ID", ""),
                 "attempt": originate.variables.get("IVR_ATTEMPT_ID", "")}
        channel.application, channel.data = "AGI", f"agi://{self.agi_address}/announce"
        number = dialled(originate.channel)
        digits = self.callee_digits.get(originate.channel, self.callee_digits.get(number, ""))
        tech = originate.channel.partition("/")[0]
        call = asyncio.create_task(place_call(
            self.agi_address, "announce", caller=ScriptedCaller(digits), sounds=self.sounds, query=query,
            caller_id=originate.caller_id[0] or None, answered=True, variables=originate.variables,
            agi_env={"agi_channel": channel.name, "agi_uniqueid": channel.uniqueid, "agi_type": tech,
                     "agi_context": ANNOUNCE_CONTEXT, "agi_extension": originate.exten or "s",
                     "agi_dnid": "unknown"},
        ))
        if await _hangup_before(call, channel):
            return
        try:
            result = call.result()
        except (OSError, TimeoutError, ValueError) as error:
            log.warning("ami_sim.agi_failed", uniqueid=channel.uniqueid, error=type(error).__name__)
            return
        self.calls.append(result)
        if self.heard_dir is not None:
            lines = masked_lines(result.transcript.render(self.catalog, "en"))
            await asyncio.to_thread(write_heard, self.heard_dir, query["job"] or channel.uniqueid, lines)

    async def _bridge(self, agent: AmiChannel, originate: AmiOriginate) -> None:
        """Dial(${IVR_BRIDGE_DIAL}) from the agent's channel, then the h extension's UserEvent."""
        dial = originate.variables.get("IVR_BRIDGE_DIAL", "")
        agent.application, agent.data = "Dial", dial
        outcome = self.outcome_for(dial) if "/" in dial else "failed"
        status = _DIAL_STATUS[outcome]
        callee: AmiChannel | None = None
        if outcome != "failed":
            callee = self._new_channel(dial, self.new_uniqueid(), originate, linkedid=agent.uniqueid)
            callee.application, callee.data = "AppDial", "(Outgoing Line)"
            reason = await self._dial(callee, outcome, float("inf"), also=agent)
            if reason == REASON_HANGUP:
                status = "CANCEL" if agent.hangup_requested.is_set() else "NOANSWER"
            if reason == _REASONS["answer"]:
                agent.bridge_id = callee.bridge_id = str(uuid.uuid4())
                await _hangup_within(self.bridge_seconds, callee, agent)
        self._broadcast(event("UserEvent", "user,all", [
            *agent.headers(), ("UserEvent", BRIDGE_EVENT), ("Attempt", originate.variables.get("IVR_ATTEMPT_ID", "")),
            ("Job", originate.variables.get("IVR_JOB_ID", "")), ("DialStatus", status),
        ]))
        if callee is not None:
            self._hang_up(callee, callee.hangup_cause)

    # -- events --------------------------------------------------------------------------------

    def _emit(self, name: str, channel: AmiChannel, *extra: tuple[str, str]) -> None:
        self._broadcast(event(name, _CALL, [*channel.headers(), *extra]))

    def _set_state(self, channel: AmiChannel, state: int) -> None:
        channel.state = state
        self._emit("Newstate", channel)

    def _hang_up(self, channel: AmiChannel, cause: int) -> None:
        """The channel is gone: one Hangup event (manager_channels.c `channel_state_change`)."""
        if self.channels.pop(channel.uniqueid, None) is None:
            return
        text = _CAUSE_TEXTS.get(cause, "Unknown")
        self._emit("Hangup", channel, ("Cause", str(cause)), ("Cause-txt", text))


async def _hangup_within(seconds: float, *channels: AmiChannel | None) -> bool:
    """Wait `seconds`; True as soon as a hang-up is asked for on one of `channels`."""
    if any(channel.hangup_requested.is_set() for channel in channels if channel):
        return True
    waits = [asyncio.create_task(channel.hangup_requested.wait()) for channel in channels if channel]
    try:
        done, _ = await asyncio.wait(waits, timeout=None if seconds == float("inf") else seconds,
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
    return bool(done)


async def _hangup_before(call: asyncio.Task[CallResult], channel: AmiChannel) -> bool:
    """Wait for the AGI call to end; True (and the call cut off) if the channel is hung up first."""
    hangup = asyncio.create_task(channel.hangup_requested.wait())
    try:
        await asyncio.wait({call, hangup}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        hangup.cancel()
        if not call.done():
            call.cancel()
            await asyncio.gather(call, return_exceptions=True)
    return call.cancelled()
