"""`bridge` and `notice` calls through Kazoo: one quickcall per attempt, outcomes from the CDRs.

* `bridge`: the agent (`job.agent`) is quickcalled to `job.to`. `job.agent` names a Kazoo user
  or device: `user:<id>` or `device:<id>`; a bare id is looked up as a device first (one GET),
  and taken for a user when Kazoo does not know such a device.
* `notice`: a `cellphone` device whose call forward is `job.to` (`require_keypress: false`) is
  created for the attempt and quickcalled to `pivot_number`, the number of a callflow whose one
  module is `pivot` to the service's `announce` route (provisioned elsewhere). The quickcall
  carries `job` and `attempt` as custom application variables: the Pivot transport hands them
  to the `announce` flow, whose record for the attempt makes it `completed`. The device is
  deleted once the attempt ended (in `follow` too); a failed delete is only logged.

Every quickcall carries `JOB_VARIABLE` = the attempt id, so the attempt's CDRs (and the sandbox's
count of quickcalls) are found by it. The attempt's refs, noted in this order:

* `device_id` (notice): the device made for the attempt, noted before any quickcall.
* `job_variable` (the attempt id) and `quickcall_at` (epoch seconds), noted just before the one
  quickcall request: without `quickcall_at` no quickcall was ever sent for the attempt.
* `quickcall_refused` (= `quickcall_at`) when Kazoo answered that request with a refusal (4xx,
  5xx): nothing was placed, and a later `place` may quickcall (with a new device for a notice).
* `call_ids` (comma-separated endpoint legs) and `request_id` once Kazoo answered the quickcall;
  `quickcall_unclear` when the request went out but no answer came (timeout, broken connection):
  the call may be placed, so it is followed by its CDRs and never sent again.

Outcomes, from the CDR rows filtered by `JOB_VARIABLE` (from `quickcall_at` less a margin), polled
with a backoff `poll_min` → `poll_max`: the key holder's leg answered (`NORMAL_CLEARING`) →
`completed` for a bridge; `USER_BUSY` and congestion → `busy`; `NO_ANSWER`, `ORIGINATOR_CANCEL`
and the like → `no_answer`; anything else (`UNALLOCATED_NUMBER`...) → `failed` naming the cause.
A bridge whose agent leg did not answer ends the same way, the reason prefixed `agent:`. A notice
answered without the `announce` record within `record_wait` ends `no_answer`, as over Asterisk.
A poll that fails never ends the attempt; the follow is bounded by `follow_limit` (extended while
a leg of the call is still in Kazoo's channels), then `failed` ("outcome unknown").

`follow` quickcalls only an attempt that provably placed nothing: no `quickcall_at` (the service
stopped before the quickcall went out), or a quickcall Kazoo refused. That quickcall is the
attempt's one call, as `place` would send it (a leftover device is deleted first, a notice gets a
new one): failing the job for a restart would be worse, and nothing can ring twice.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence

from ivr.errors import PlatformError, PlatformRejectedError, PlatformUnavailableError, SettingsError
from ivr.http_answers import NoAnswer
from ivr.logging import get_logger
from ivr.outbound import AttemptContext, AttemptEnd, JobKind, JobState
from ivr.outbound.platforms.kazoo._client import JOB_VARIABLE, MAX_CDR_RANGE, CdrRow, KazooClient, printable

__all__ = ["CDR_MARGIN", "FOLLOW_LIMIT", "KazooPlatform", "bridge_outcome", "caller_id_parts", "leg_end", "notice_leg"]

log = get_logger("ivr.outbound.kazoo")

FOLLOW_LIMIT = 31 * 60.0
"""Seconds an attempt is followed at most without any CDR telling its end (extended while a leg
is still up in Kazoo's channels): then it ends `failed`."""
CDR_MARGIN = 120.0
"""Seconds before `quickcall_at` the CDR query starts from (clocks differ)."""
RECORD_WAIT = 10.0
"""Seconds a notice answered by the key holder waits for the `announce` route's record."""

_ANSWERED = frozenset({"NORMAL_CLEARING", "NORMAL_UNSPECIFIED"})
_BUSY = frozenset({"USER_BUSY", "NORMAL_CIRCUIT_CONGESTION", "SWITCH_CONGESTION", "CALL_REJECTED_CONGESTION"})
_NO_ANSWER = frozenset({"NO_ANSWER", "NO_USER_RESPONSE", "ORIGINATOR_CANCEL", "ALLOTTED_TIMEOUT",
                        "PROGRESS_TIMEOUT", "RECOVERY_ON_TIMER_EXPIRE"})
_IGNORED = frozenset({"LOSE_RACE", "PICKED_OFF"})
"""Legs of a simultaneous ring that lost to the one that answered: they tell nothing."""
_NAMED_CALLER_ID = re.compile(r'(?:"(?P<quoted>[^"]*)"|(?P<bare>[^"<]*))\s*<(?P<number>[^<>]*)>')
_CALLER_NUMBER = re.compile(r"[0-9+*#]+")


def caller_id_parts(caller_id: str) -> tuple[str, str]:
    """(name, number) of `IVR_OUTBOUND_CALLER_ID` as Asterisk reads its `CallerID`: `"Name" <number>`,
    `Name <number>`, `<number>`, a bare number or a bare name; a part not given is empty. Kazoo's
    quickcall takes them apart (`cid-name`, `cid-number`)."""
    text = caller_id.strip()
    if named := _NAMED_CALLER_ID.fullmatch(text):
        name = named["quoted"] if named["quoted"] is not None else named["bare"]
        return name.strip(), named["number"].strip()
    if _CALLER_NUMBER.fullmatch(text):
        return "", text
    return text.strip('"').strip(), ""


def leg_end(cause: str, who: str = "") -> AttemptEnd:
    """The end a leg's hangup cause means (for a leg that was not answered)."""
    shown = printable(cause or "no hangup cause", 60)
    prefix = f"{who}: " if who else ""
    if cause in _BUSY:
        return AttemptEnd(JobState.BUSY, f"{prefix}busy ({shown})")
    if cause in _NO_ANSWER:
        return AttemptEnd(JobState.NO_ANSWER, f"{prefix}no answer ({shown})")
    return AttemptEnd(JobState.FAILED, f"{prefix}the call failed ({shown})")


def _is_endpoint_leg(row: CdrRow, call_ids: Sequence[str]) -> bool:
    return row.call_id in call_ids or row.call_id.endswith("-quickcall")


def bridge_outcome(rows: Sequence[CdrRow], call_ids: Sequence[str], *, final: bool = False) -> AttemptEnd | None:
    """A bridge's end from its CDR rows; None while they do not tell it yet (`final`: decide anyway)."""
    legs = [r for r in rows if r.hangup_cause not in _IGNORED]
    agents = [r for r in legs if _is_endpoint_leg(r, call_ids)]
    holders = [r for r in legs if not _is_endpoint_leg(r, call_ids)]
    if holders:
        holder = next((r for r in holders if r.hangup_cause in _ANSWERED), holders[0])
        if holder.hangup_cause in _ANSWERED:
            return AttemptEnd(JobState.COMPLETED, "both legs answered")
        return leg_end(holder.hangup_cause, "key holder")
    if not agents:
        return AttemptEnd(JobState.FAILED, "outcome unknown: Kazoo kept no record of the call") if final else None
    agent = next((r for r in agents if r.hangup_cause in _ANSWERED), agents[0])
    if agent.hangup_cause in _ANSWERED or agent.other_leg_call_id:
        # The agent answered: the key holder's leg is to come (CDRs are written as legs end).
        if not final:
            return None
        return AttemptEnd(JobState.FAILED, "outcome unknown: the agent answered; no record of the key holder's leg")
    return leg_end(agent.hangup_cause, "agent")


def notice_leg(rows: Sequence[CdrRow], call_ids: Sequence[str]) -> CdrRow | None:
    """The notice's leg to the key holder (the cellphone device's), when its CDR is there."""
    legs = [r for r in rows if r.hangup_cause not in _IGNORED]
    mine = [r for r in legs if _is_endpoint_leg(r, call_ids)] or legs
    return next((r for r in mine if r.hangup_cause in _ANSWERED), mine[0] if mine else None)


def _sent(refs: dict[str, str]) -> bool:
    """Whether a quickcall request went out for the attempt and was not answered with a refusal."""
    return "quickcall_at" in refs and refs.get("quickcall_refused") != refs["quickcall_at"]


def _may_be_sent(exc: PlatformUnavailableError) -> bool:
    """Whether the quickcall request went out without an answer: Kazoo may have placed the call.

    The client raises `PlatformUnavailableError` from `NoAnswer` (its context); a 5xx, or a
    request that could not connect, placed nothing.
    """
    context = exc.__context__
    return isinstance(context, NoAnswer) and context.reached and str(exc).startswith("Kazoo quickcall")


class KazooPlatform:
    """Kazoo as an outbound platform: `bridge` by quickcall, `notice` by a cellphone device
    quickcalled to a Pivot callflow. `pivot_number` empty: notices are refused (rejected)."""

    name = "kazoo"
    kinds = frozenset({JobKind.NOTICE, JobKind.BRIDGE})

    def __init__(
        self, client: KazooClient, *, pivot_number: str = "", cid_number: str = "", cid_name: str = "",
        ring_seconds: float = 30.0, poll_min: float = 2.0, poll_max: float = 30.0,
        follow_limit: float = FOLLOW_LIMIT, record_wait: float = RECORD_WAIT, cdr_margin: float = CDR_MARGIN,
    ) -> None:
        self.client = client
        self._pivot_number = pivot_number
        self._cid_number = cid_number
        self._cid_name = cid_name
        self._ring_seconds = ring_seconds
        self._poll_min, self._poll_max = poll_min, max(poll_min, poll_max)
        self._follow_limit = follow_limit
        self._record_wait = record_wait
        self._cdr_margin = cdr_margin

    async def start(self) -> None:
        try:
            await self.client.authenticate()
        except PlatformUnavailableError as exc:
            log.warning("kazoo.unreachable", error=str(exc))

    async def close(self) -> None:
        await self.client.aclose()

    def status(self) -> str:
        return "ready"  # asked per request: no connection to lose between calls

    # -- the attempt ----------------------------------------------------------------------

    async def place(self, ctx: AttemptContext) -> AttemptEnd:
        job = ctx.job
        if job.kind not in self.kinds:
            raise PlatformRejectedError(f"Kazoo cannot place a {job.kind.value}")
        if _sent(ctx.attempt.refs):  # asked again for an attempt already sent: never twice
            return await self.follow(ctx)
        device_id = ""
        try:
            if job.kind is JobKind.BRIDGE:
                kind, endpoint_id = await self._agent(job.agent or "")
                number = job.to
                variables = {JOB_VARIABLE: ctx.attempt.id}
            else:
                if not self._pivot_number:
                    raise PlatformRejectedError("no Kazoo pivot number is set for notices")
                device_id = await self.client.create_cellphone(name=f"keybox {ctx.attempt.id}", number=job.to)
                await ctx.note_refs(device_id=device_id)
                kind, endpoint_id, number = "devices", device_id, self._pivot_number
                variables = {JOB_VARIABLE: ctx.attempt.id, "job": job.id, "attempt": ctx.attempt.id}
            await ctx.note_refs(job_variable=ctx.attempt.id, quickcall_at=str(round(time.time(), 3)))
            log.info("kazoo.quickcall", job_id=job.id, attempt=ctx.attempt.number, kind=job.kind.value,
                     endpoint=kind)
            answer = await self.client.quickcall(
                kind, endpoint_id, number, variables=variables, cid_number=self._cid_number or None,
                cid_name=self._cid_name or None, auto_answer=False, ring_seconds=int(self._ring_seconds))
        except PlatformUnavailableError as exc:
            if _sent(ctx.attempt.refs) and _may_be_sent(exc):
                log.warning("kazoo.quickcall_unclear", job_id=job.id, attempt=ctx.attempt.number, error=str(exc))
                await ctx.note_refs(quickcall_unclear=printable(str(exc), 120))
                return await self._follow(ctx)
            await self._forget_quickcall(ctx)
            await self._delete_device(device_id)
            raise
        except SettingsError as exc:  # Kazoo refused our token: nothing was placed
            await self._forget_quickcall(ctx)
            await self._delete_device(device_id)
            raise PlatformUnavailableError(str(exc)) from None
        except PlatformRejectedError:
            await self._forget_quickcall(ctx)
            await self._delete_device(device_id)
            raise
        except ValueError as exc:  # an id or a number the client will not put in a URL
            await self._forget_quickcall(ctx)
            await self._delete_device(device_id)
            raise PlatformRejectedError(printable(str(exc), 120)) from None
        await ctx.note_refs(call_ids=",".join(answer.call_ids)[:1000], request_id=answer.request_id[:64])
        await ctx.progress(JobState.RINGING, "Kazoo accepted the quickcall")
        return await self._follow(ctx)

    async def follow(self, ctx: AttemptContext) -> AttemptEnd:
        if not _sent(ctx.attempt.refs):
            await self._delete_device(ctx.attempt.refs.get("device_id", ""))
            log.info("kazoo.never_sent", job_id=ctx.job.id, attempt=ctx.attempt.number)
            return await self.place(ctx)
        return await self._follow(ctx)

    async def _forget_quickcall(self, ctx: AttemptContext) -> None:
        """A quickcall answered with a refusal placed nothing: a later `place` may send it."""
        sent_at = ctx.attempt.refs.get("quickcall_at")
        if sent_at is not None:
            await ctx.note_refs(quickcall_refused=sent_at)

    async def _agent(self, agent: str) -> tuple[str, str]:
        """(`users` or `devices`, the id) the agent's endpoint names."""
        kind, sep, endpoint_id = agent.partition(":")
        if sep:
            if kind not in ("user", "device") or not endpoint_id:
                raise PlatformRejectedError("a Kazoo agent is user:<id>, device:<id> or a bare id")
            return f"{kind}s", endpoint_id
        if not agent:
            raise PlatformRejectedError("a bridge needs the agent's Kazoo user or device id")
        return ("devices" if await self.client.device(agent) is not None else "users"), agent

    # -- following ------------------------------------------------------------------------

    async def _follow(self, ctx: AttemptContext) -> AttemptEnd:
        notice = ctx.job.kind is JobKind.NOTICE
        try:
            end = await self._poll(ctx)
        except Exception:
            if notice:
                await self._delete_device(ctx.attempt.refs.get("device_id", ""))
            raise
        # Cancelled (the service stops): the device stays; `follow` deletes it after the restart.
        if notice:
            await self._delete_device(ctx.attempt.refs.get("device_id", ""))
        log.info("kazoo.ended", job_id=ctx.job.id, attempt=ctx.attempt.number, state=end.state.value,
                 reason=end.reason)
        return end

    async def _poll(self, ctx: AttemptContext) -> AttemptEnd:
        refs = ctx.attempt.refs
        notice = ctx.job.kind is JobKind.NOTICE
        variable = refs.get("job_variable") or ctx.attempt.id
        call_ids = [c for c in refs.get("call_ids", "").split(",") if c]
        try:
            sent_at = float(refs.get("quickcall_at", ""))
        except ValueError:
            sent_at = time.time()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._follow_limit
        delay = self._poll_min
        while True:
            if notice:
                record = await ctx.announced(0)
                if record is not None:
                    return _completed(record.outcome.value if record.outcome else "announced")
            rows = await self._cdrs(variable, sent_at)
            if rows is not None:
                if notice:
                    leg = notice_leg(rows, call_ids)
                    if leg is not None:
                        if leg.hangup_cause not in _ANSWERED:
                            return leg_end(leg.hangup_cause)
                        record = await ctx.announced(self._record_wait)
                        if record is not None:
                            return _completed(record.outcome.value if record.outcome else "announced")
                        return AttemptEnd(JobState.NO_ANSWER, "answered but the announcement did not run")
                else:
                    end = bridge_outcome(rows, call_ids)
                    if end is not None:
                        return end
            if loop.time() + delay > deadline:
                if await self._still_up(call_ids):
                    deadline = loop.time() + self._follow_limit
                else:
                    log.warning("kazoo.follow_limit", job_id=ctx.job.id, attempt=ctx.attempt.number,
                                limit_s=self._follow_limit)
                    if not notice and rows:
                        last = bridge_outcome(rows, call_ids, final=True)
                        if last is not None:
                            return last
                    return AttemptEnd(JobState.FAILED, "outcome unknown: Kazoo never reported how the call ended")
            if notice:
                record = await ctx.announced(delay)  # a record ends the wait at once
                if record is not None:
                    return _completed(record.outcome.value if record.outcome else "announced")
            else:
                await asyncio.sleep(delay)
            delay = min(delay * 2, self._poll_max)

    async def _cdrs(self, variable: str, sent_at: float) -> list[CdrRow] | None:
        """The attempt's CDR rows; None when the poll failed (it is tried again)."""
        now = time.time()
        since = max(sent_at - self._cdr_margin, now - MAX_CDR_RANGE + 60)
        try:
            return await self.client.cdrs(since=min(since, now), until=now, variables={JOB_VARIABLE: variable})
        except (PlatformError, SettingsError, ValueError) as exc:
            log.warning("kazoo.poll_failed", error=str(exc))
            return None

    async def _still_up(self, call_ids: Sequence[str]) -> bool:
        """Whether a leg of the call is still in Kazoo's channels (a long bridge has no CDR yet)."""
        if not call_ids:
            return False
        try:
            channels = await self.client.channels()
        except (PlatformError, SettingsError) as exc:
            log.warning("kazoo.channels_failed", error=str(exc))
            return False
        return any(ch.uuid in call_ids or ch.other_leg in call_ids for ch in channels)

    async def _delete_device(self, device_id: str) -> None:
        if not device_id:
            return
        try:
            gone = await self.client.delete_device(device_id)
        except (PlatformError, SettingsError, ValueError) as exc:
            log.warning("kazoo.device_not_deleted", device_id=device_id, error=str(exc))
            return
        log.info("kazoo.device_deleted", device_id=device_id, existed=gone)


def _completed(outcome: str) -> AttemptEnd:
    return AttemptEnd(JobState.COMPLETED, printable(outcome, 60))
