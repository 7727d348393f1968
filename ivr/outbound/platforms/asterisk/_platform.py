"""Outbound calls through Asterisk's Manager: an `Originate` per attempt, followed by its events.

The attempt id is the Originate's ActionID and the new channel's id (`ChannelId`, so its
Uniqueid is known before the call exists): after a lost connection or a restart the call is
found again by that id with `CoreShowChannels`, and never placed a second time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ivr.errors import AmiError, PlatformRejectedError, PlatformUnavailableError
from ivr.logging import get_logger
from ivr.outbound._models import JobKind, JobState
from ivr.outbound._platform import AttemptContext, AttemptEnd
from ivr.outbound.platforms.asterisk._ami import AmiConnection, AmiMessage, ConnectionLost, EventStream

__all__ = ["AsteriskPlatform"]

log = get_logger(__name__)

ANNOUNCE_CONTEXT = "keybox-announce"
BRIDGE_CONTEXT = "keybox-bridge"

REASONS: dict[str, tuple[JobState, str]] = {
    "0": (JobState.FAILED, "the call could not be placed"),
    "1": (JobState.NO_ANSWER, "no answer (hung up while ringing)"),
    "3": (JobState.NO_ANSWER, "no answer"),
    "5": (JobState.BUSY, "busy"),
    "8": (JobState.BUSY, "congestion"),
}
"""`OriginateResponse` Reason (Asterisk's control frame of the outcome) → the attempt's end; 4 is answered."""

DIAL_STATUSES: dict[str, tuple[JobState, str]] = {
    "ANSWER": (JobState.COMPLETED, "both legs answered"),
    "BUSY": (JobState.BUSY, "the key holder's line was busy"),
    "CONGESTION": (JobState.BUSY, "congestion dialling the key holder"),
    "NOANSWER": (JobState.NO_ANSWER, "the key holder did not answer"),
    "CANCEL": (JobState.FAILED, "the agent hung up before the key holder answered"),
}
"""The bridge's `UserEvent: KeyboxBridge` DialStatus → the attempt's end; anything else is failed."""

RECHECK_SECONDS = 60.0
"""While an answered call is up, how often to make sure it still is (a Hangup missed is not waited for forever)."""

UNKNOWN_LOST = "outcome unknown: the Manager connection was lost"
UNKNOWN_RESTART = "outcome unknown after the restart"


class AsteriskPlatform:
    """`ivr.outbound.Platform` over AMI: `notice` into `keybox-announce`, `bridge` into `keybox-bridge`."""

    name = "asterisk"
    kinds = frozenset({JobKind.NOTICE, JobKind.BRIDGE})

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str,
        secret: str,
        dial_template: str = "PJSIP/{number}@carrier",
        caller_id: str = "",
        ring_seconds: float = 30.0,
        action_timeout: float = 5.0,
        ping_interval: float = 10.0,
        record_wait: float = 10.0,
        guard_margin: float = 10.0,
        lost_patience: float = 900.0,
        reconnect_min: float = 0.5,
        reconnect_max: float = 30.0,
    ) -> None:
        self._ami = AmiConnection(
            host=host, port=port, username=username, secret=secret, action_timeout=action_timeout,
            ping_interval=ping_interval, reconnect_min=reconnect_min, reconnect_max=reconnect_max,
        )
        self.dial_template = dial_template
        self.caller_id = caller_id
        self.ring_seconds = ring_seconds
        self.record_wait = record_wait
        """How long after an answered notice hangs up to wait for the `announce` route's record."""
        self.guard_margin = guard_margin
        """Beyond the ring time, how long to wait for an `OriginateResponse` before looking for the call."""
        self.lost_patience = lost_patience
        """How long a followed call waits for a lost Manager connection to come back."""

    @property
    def ami(self) -> AmiConnection:
        return self._ami

    async def start(self) -> None:
        await self._ami.start()

    async def close(self) -> None:
        await self._ami.close()

    def status(self) -> str:
        return "connected" if self._ami.connected else "disconnected"

    def originate(self, ctx: AttemptContext) -> dict[str, str | list[str]]:
        """The `Originate` of the attempt's call (the secret-free headers a test can read)."""
        job, attempt_id = ctx.job, ctx.attempt.id
        variables = [f"IVR_JOB_ID={job.id}", f"IVR_ATTEMPT_ID={attempt_id}"]
        if job.kind is JobKind.NOTICE:
            channel, context = self.dial_template.format(number=job.to), ANNOUNCE_CONTEXT
        else:
            if not job.agent:
                raise PlatformRejectedError("a bridge needs the agent's endpoint")
            channel, context = job.agent, BRIDGE_CONTEXT
            variables.append(f"IVR_BRIDGE_DIAL={self.dial_template.format(number=job.to)}")
        headers: dict[str, str | list[str]] = {
            "Action": "Originate",
            "ActionID": attempt_id,
            "ChannelId": attempt_id,
            "Channel": channel,
            "Context": context,
            "Exten": "s",
            "Priority": "1",
            "Timeout": str(round(self.ring_seconds * 1000)),
            "Async": "true",
            "Variable": variables,  # one header each: no comma in a value can split it
        }
        if self.caller_id:
            headers["CallerID"] = self.caller_id
        return headers

    async def place(self, ctx: AttemptContext) -> AttemptEnd:
        if ctx.job.kind not in self.kinds:
            raise PlatformRejectedError(f"Asterisk cannot place a {ctx.job.kind.value}")
        headers = self.originate(ctx)
        attempt_id = ctx.attempt.id
        if not self._ami.connected:
            raise PlatformUnavailableError(f"the Asterisk Manager at {self._ami.where} is not connected")
        with self._ami.events(_concerning(attempt_id, attempt_id)) as stream:
            await ctx.note_refs(action_id=attempt_id, channel_id=attempt_id)
            call = _Call(self, ctx, stream)
            try:
                answer = await self._ami.send(headers)
            except PlatformUnavailableError:
                raise  # nothing was sent
            except AmiError as exc:
                # Sent, maybe placed: find it again, never send it again.
                log.warning("originate_unanswered", attempt=attempt_id, error=str(exc))
                return await call.run()
            if not answer.success:
                raise PlatformRejectedError(f"Asterisk refused the call: {answer.message or 'Originate failed'}")
            log.info("originate_queued", attempt=attempt_id, kind=ctx.job.kind.value)
            return await call.run()

    async def follow(self, ctx: AttemptContext) -> AttemptEnd:
        if not self._ami.started:
            await self._ami.start()
        if not await self._ami.wait_connected(self._ami.action_timeout):
            raise PlatformUnavailableError(f"the Asterisk Manager at {self._ami.where} is not connected")
        channel_id = ctx.attempt.refs.get("channel_id") or ctx.attempt.id
        with self._ami.events(_concerning(ctx.attempt.id, channel_id)) as stream:
            call = _Call(self, ctx, stream)
            try:
                end = await call.look(after="restart")
            except AmiError as exc:
                raise PlatformUnavailableError(f"could not list Asterisk's channels: {exc}") from None
            return end if end is not None else await call.run()


def _concerning(attempt_id: str, channel_id: str) -> Callable[[AmiMessage], bool]:
    """The events of one attempt's call: its Originate's, its channel's, its bridge report."""
    return lambda event: (event.action_id == attempt_id or event.get("uniqueid") == channel_id
                          or event.get("attempt") == attempt_id)


class _Call:
    """One attempt's call, followed by its events until it ends."""

    def __init__(self, platform: AsteriskPlatform, ctx: AttemptContext, stream: EventStream) -> None:
        self._p, self._ctx, self._stream = platform, ctx, stream
        self._ami = platform.ami
        self.kind = ctx.job.kind
        self.attempt_id = ctx.attempt.id
        self.channel_id = ctx.attempt.refs.get("channel_id") or self.attempt_id
        self.ringing = ctx.attempt.state in (JobState.RINGING, JobState.ANSWERED)
        self.answered = ctx.attempt.state is JobState.ANSWERED
        self.reported = False  # an OriginateResponse was seen
        self.hung_up = False
        self.refs = dict(ctx.attempt.refs)
        self._deadline = self._now() + platform.ring_seconds + platform.guard_margin

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    async def run(self) -> AttemptEnd:
        """Events until the end; a silence past the deadline or a lost connection looks for the call."""
        while True:
            item = await self._stream.next(max(self._deadline - self._now(), 0.001))
            if item is None:
                end = await self._on_deadline()
            elif isinstance(item, ConnectionLost):
                end = await self._recover()
            else:
                end = await self._on_event(item)
            if end is not None:
                log.info("attempt_ended", attempt=self.attempt_id, state=end.state.value, reason=end.reason)
                return end

    async def _on_event(self, event: AmiMessage) -> AttemptEnd | None:
        name = event.event.lower()
        if name == "originateresponse" and (event.action_id == self.attempt_id
                                            or event.get("uniqueid") == self.channel_id):
            return await self._on_originate_response(event)
        if name == "userevent" and event.get("userevent").lower() == "keyboxbridge" \
                and event.get("attempt") == self.attempt_id:
            return self._bridge_end(event.get("dialstatus").upper())
        if event.get("uniqueid") != self.channel_id:
            return None
        await self._note_channel(event)
        if name == "newstate":
            await self._on_state(event.get("channelstate"), event.get("channelstatedesc"))
        elif name == "hangup":
            return await self._on_hangup()
        return None

    async def _on_originate_response(self, event: AmiMessage) -> AttemptEnd | None:
        self.reported = True
        await self._note_channel(event)
        reason = event.get("reason")
        if reason != "4":
            state, text = REASONS.get(reason, (JobState.FAILED, f"the call could not be placed (Reason {reason})"))
            return AttemptEnd(state, f"agent: {text}" if self.kind is JobKind.BRIDGE else text)
        await self._answer()
        if self.hung_up:
            return await self._on_hangup()
        self._deadline = self._now() + RECHECK_SECONDS  # answered: the Hangup (or the bridge's report) ends it
        return None

    async def _on_state(self, state: str, desc: str) -> None:
        if state == "5" or desc == "Ringing":
            if not self.ringing and not self.answered:
                self.ringing = True
                await self._ctx.progress(JobState.RINGING)
        elif state == "6" or desc == "Up":
            await self._answer()

    async def _answer(self) -> None:
        if not self.answered:
            self.answered = self.ringing = True
            await self._ctx.progress(JobState.ANSWERED)

    async def _on_hangup(self) -> AttemptEnd | None:
        self.hung_up = True
        if self.answered and self.kind is JobKind.NOTICE:
            return await self._notice_end(self._p.record_wait, "answered but the announcement did not run")
        # Not answered: the OriginateResponse follows the Hangup. Bridge: its report may follow.
        self._deadline = self._now() + self._ami.action_timeout
        return None

    async def _on_deadline(self) -> AttemptEnd | None:
        if self.hung_up:
            if self.kind is JobKind.BRIDGE:
                if self.answered:
                    return AttemptEnd(JobState.FAILED, "the bridge ended without a report of the key holder's leg")
                return AttemptEnd(JobState.FAILED, "outcome unknown: the call ended with no answer reported")
            return await self._notice_end(0, "the call ended with no answer reported")
        log.warning("originate_no_report", attempt=self.attempt_id)
        try:
            return await self.look(after="silence")
        except AmiError:
            return await self._recover()

    async def _recover(self) -> AttemptEnd | None:
        """The connection dropped: wait for it, then look for the call, again while that fails,
        for up to `lost_patience` seconds; then the outcome is unknown (failed: never retried)."""
        give_up = self._now() + self._p.lost_patience
        reason = f"{UNKNOWN_LOST} and did not come back"
        while True:
            left = give_up - self._now()
            if left <= 0 or not await self._ami.wait_connected(left):
                if self.kind is JobKind.NOTICE:
                    return await self._notice_end(0, reason, final=JobState.FAILED)
                return AttemptEnd(JobState.FAILED, reason)
            try:
                return await self.look(after="lost")
            except AmiError as exc:
                log.warning("call_lookup_failed", attempt=self.attempt_id, error=str(exc))
                reason = f"outcome unknown: the call could not be looked up ({exc})"
                await asyncio.sleep(min(self._ami.action_timeout, max(give_up - self._now(), 0)))

    async def look(self, *, after: str) -> AttemptEnd | None:
        """`CoreShowChannels` for the attempt's channel: still up → None (keep waiting for its
        events); gone → the attempt's end. `AmiError` when the listing fails."""
        entries = await self._ami.send_list({"Action": "CoreShowChannels"})
        if not entries or not entries[0].success:
            message = entries[0].message if entries else "no answer"
            raise AmiError(f"Asterisk refused CoreShowChannels ({message}): "
                           "the Manager user needs write = system or reporting")
        found = next((e for e in entries if e.event == "CoreShowChannel" and e.get("uniqueid") == self.channel_id),
                     None)
        if found is not None:
            await self._note_channel(found)
            await self._on_state(found.get("channelstate"), found.get("channelstatedesc"))
            wait = RECHECK_SECONDS if self.answered else self._p.ring_seconds + self._p.guard_margin
            self._deadline = self._now() + wait
            log.info("call_found", attempt=self.attempt_id, after=after, state=found.get("channelstatedesc"))
            return None
        # Gone. What is queued may say how it ended; read it before deciding.
        for item in self._stream.pending():
            if isinstance(item, AmiMessage):
                end = await self._on_event(item)
                if end is not None:
                    return end
        log.info("call_not_found", attempt=self.attempt_id, after=after)
        if self.kind is JobKind.BRIDGE:
            if after == "restart":
                return AttemptEnd(JobState.FAILED, UNKNOWN_RESTART)
            if after == "lost":
                return AttemptEnd(JobState.FAILED, UNKNOWN_LOST)
            if self.answered:
                return AttemptEnd(JobState.FAILED, "the bridge ended without a report of the key holder's leg")
            return AttemptEnd(JobState.FAILED, "outcome unknown: no answer reported; no call found")
        if after == "restart":
            if self.answered:
                return await self._notice_end(0, "answered but the announcement did not run "
                                                 "(no call found after the restart)")
            return await self._notice_end(0, "not answered (no call found after the restart)")
        if self.answered:
            return await self._notice_end(self._p.record_wait, "answered but the announcement did not run")
        if after == "lost":
            return await self._notice_end(0, "no answer reported; no call found after the Manager connection came back")
        return await self._notice_end(0, "no answer reported; no call found")

    async def _notice_end(self, wait: float, otherwise: str, final: JobState = JobState.NO_ANSWER) -> AttemptEnd:
        """A notice is completed when the `announce` route left its record for the attempt."""
        record = await self._ctx.announced(timeout=wait)
        if record is not None:
            return AttemptEnd(JobState.COMPLETED, record.outcome.value if record.outcome else "announced")
        return AttemptEnd(final, otherwise)

    def _bridge_end(self, status: str) -> AttemptEnd:
        state, text = DIAL_STATUSES.get(status, (JobState.FAILED, f"the key holder could not be dialled ({status})"))
        return AttemptEnd(state, text)

    async def _note_channel(self, event: AmiMessage) -> None:
        """Keep the channel's name and Uniqueid on the attempt once known."""
        new = {key: value for key, value in (("channel", event.get("channel")), ("uniqueid", event.get("uniqueid")))
               if value and value != "<null>" and self.refs.get(key) != value}
        if new:
            self.refs.update(new)
            await self._ctx.note_refs(**new)
