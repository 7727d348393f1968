"""`notice` calls through ICTCore: a contact, a TTS program, a transmission, one send, then polls.

ICTCore has no webhooks and plays its own TTS (the `announce` route does not run): the program
speaks the job's message and code, and the transmission's status says how the call ended.

The attempt's refs, and what each tells a later `place` or `follow` (after a restart, or after
`PlatformUnavailableError`):

* `contact_id`, `program_id`, `transmission_id`, noted together before any send: with no
  `transmission_id`, nothing was ever sent for this attempt, so nothing was dialled.
* `sent_at` (epoch seconds), noted just before the one `send` request; `send_answered` (the
  same value) once ICTCore answered it, whatever it answered: that send is no longer in flight.
* `spool_id` after a send that named one; `send_unclear` after a 200 that named none (one ICTCore
  branch answers so, and may have queued the call): either way the transmission is never sent again.

Decisions (ICTCore marks a transmission `processing` before it dials, and refuses to send it
again with 423 once `processing` or `completed`: `core/Transmission.php::send`):

* A transmission still `pending` with no spool and no send in flight was never started. Then
  `place` and `follow` alike send it: this is the attempt's one call, not a second one. A send
  counts as in flight for three times `timeout` after `sent_at`.
* `follow` of an attempt with no `transmission_id` (the service stopped before its send)
  prepares and sends it, as `place` does: provably nothing was dialled for it, and failing the
  job for a restart, or asking again later for ever, would both be worse. It raises
  `PlatformUnavailableError` when ICTCore cannot be reached (nothing placed: ask again later),
  and ends `failed` where `place` raises `PlatformRejectedError`.
* A send that ICTCore answered with an error (417, 423, 5xx) while the transmission stays
  `pending` placed nothing: `PlatformUnavailableError`, and the next `place` reuses the
  transmission. A send without an answer (timeout, broken connection) waits out the grace
  first. A send that may have been queued is followed, never repeated.
* A poll that fails (5xx, timeout, even a refused token) is retried with the same backoff and
  never ends the attempt by itself; the whole follow is bounded by `follow_limit`, then the
  attempt ends `failed` ("ICTCore never reported an outcome"). A 404 for the transmission ends
  it `failed` at once: its outcome can no longer be known.

The program's text holds the code: it is never logged; the code is logged masked only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx

from ivr.errors import PlatformError, PlatformRejectedError, PlatformUnavailableError, SettingsError
from ivr.logging import get_logger, mask_code
from ivr.outbound import AttemptContext, AttemptEnd, Job, JobKind, JobState
from ivr.outbound.platforms.ictcore._client import IctCoreClient, SendAnswer, Spool, digits_only, printable

__all__ = ["FOLLOW_LIMIT", "IctCorePlatform", "outcome_of", "program_text"]

log = get_logger("ivr.outbound.ictcore")

T = TypeVar("T")

FOLLOW_LIMIT = 31 * 60.0
"""Seconds a call is followed at most (ring time and 30 minutes): then it ends `failed`."""
CREATE_TRIES = 3
"""Tries of each create before the send; a failure then is `PlatformUnavailableError`."""

_DONE = frozenset({"failed", "invalid", "done"})
"""Final statuses whose reason is in the spools (`done`: ICTCore itself is not sure how it went)."""
_BUSY = frozenset({"busy", "user busy", "normal circuit congestion", "switch congestion", "congestion"})
_NO_ANSWER = frozenset({"no answer", "noanswer", "no user response", "timeout", "allotted timeout", "no reply"})
# FreeSWITCH's hangup causes are what ICTCore stores as a spool's response
# (`bin/freeswitch/spool_failed.lua`): USER_BUSY, NO_ANSWER... hence the underscores folded.

_SAY_CODE = {"en": "Your code is", "fr": "Votre code est", "es": "Su código es"}


class IctCorePlatform:
    """ICTCore as an outbound platform: `notice` jobs only (ICTCore has no bridge)."""

    name = "ictcore"
    kinds = frozenset({JobKind.NOTICE})

    def __init__(
        self, url: str, username: str, password: str, *, timeout: float = 10.0,
        poll_min: float = 2.0, poll_max: float = 30.0, follow_limit: float = FOLLOW_LIMIT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.client = IctCoreClient(url, username, password, timeout=timeout, transport=transport)
        self._poll_min, self._poll_max = poll_min, max(poll_min, poll_max)
        self._follow_limit = follow_limit
        self._grace = 3 * timeout
        """How long a send without an answer may still be under way inside ICTCore."""

    async def start(self) -> None:
        try:
            await self.client.authenticate()
        except PlatformUnavailableError as exc:
            log.warning("ictcore.unreachable", error=str(exc))

    async def close(self) -> None:
        await self.client.aclose()

    def status(self) -> str:
        return "ready"  # asked per request: no connection to lose between calls

    async def place(self, ctx: AttemptContext) -> AttemptEnd:
        return await self._attempt(ctx)

    async def follow(self, ctx: AttemptContext) -> AttemptEnd:
        try:
            return await self._attempt(ctx)
        except PlatformRejectedError as exc:
            return AttemptEnd(JobState.FAILED, str(exc))

    # -- one attempt ------------------------------------------------------------------------

    async def _attempt(self, ctx: AttemptContext) -> AttemptEnd:
        if ctx.job.kind is not JobKind.NOTICE:
            raise PlatformRejectedError("ICTCore places notices only: it has no bridge")
        transmission_id = _as_int(ctx.attempt.refs.get("transmission_id"))
        fresh = transmission_id is None
        if transmission_id is None:
            transmission_id = await self._prepare(ctx)
        return await self._follow(ctx, transmission_id, known="pending" if fresh else None)

    async def _prepare(self, ctx: AttemptContext) -> int:
        """Contact, program and transmission, their ids noted before any send."""
        job, attempt = ctx.job, ctx.attempt
        phone = digits_only(job.to)
        text = program_text(job)
        title = f"keybox {attempt.id}"
        log.info("ictcore.prepare", job_id=job.id, attempt=attempt.number,
                 code=mask_code(job.code) if job.code else None)
        contact_id = await self._tried("contacts", lambda: self.client.contact_for(phone))
        program_id = await self._tried("programs/voicetts", lambda: self.client.create_tts_program(title, text))
        try:
            transmission_id = await self._tried(
                "transmissions", lambda: self.client.create_transmission(title, contact_id, program_id))
        except PlatformRejectedError:
            self.client.forget_contact(phone)  # a contact deleted in ICTCore must not fail every later job
            raise
        await ctx.note_refs(contact_id=str(contact_id), program_id=str(program_id),
                            transmission_id=str(transmission_id))
        return transmission_id

    async def _follow(self, ctx: AttemptContext, transmission_id: int, known: str | None) -> AttemptEnd:
        """Poll the transmission to its end; send it when it was provably never sent."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._follow_limit
        delay = self._poll_min
        sent: tuple[SendAnswer, float] | None = None  # this call's send, and when
        status = known
        while True:
            if status is None:
                status = await self._status(transmission_id)
            if status == "pending" and self._may_send(ctx, transmission_id, sent, loop.time()):
                sent = (await self._send(ctx, transmission_id), loop.time())
                delay = self._poll_min
            elif status == "completed":
                return AttemptEnd(JobState.COMPLETED, "ICTCore completed the transmission")
            elif status in _DONE:
                return await self._outcome(transmission_id, status)
            elif status == "":
                return AttemptEnd(JobState.FAILED,
                                  f"ICTCore no longer knows transmission {transmission_id}: its outcome is unknown")
            if loop.time() + delay > deadline:
                log.warning("ictcore.follow_limit", transmission_id=transmission_id, limit_s=self._follow_limit)
                return AttemptEnd(JobState.FAILED, "ICTCore never reported an outcome")
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._poll_max)
            status = None

    def _may_send(
        self, ctx: AttemptContext, transmission_id: int, sent: tuple[SendAnswer, float] | None, now: float
    ) -> bool:
        """Whether a `pending` transmission is to be sent now; raises when this call's send placed nothing."""
        refs = ctx.attempt.refs
        if "spool_id" in refs or "send_unclear" in refs:
            return False  # ICTCore took it (or may have queued it): never sent again
        if sent is not None:
            answer, at = sent
            if answer.status is not None or now - at >= self._grace:
                # ICTCore marks a transmission `processing` before it dials: still pending after
                # it answered (or after the grace) means this send started nothing.
                raise PlatformUnavailableError(
                    f"{answer.note}; transmission {transmission_id} was not started: nothing was dialled")
            return False
        sent_at = _as_float(refs.get("sent_at"))
        answered = refs.get("send_answered") == refs.get("sent_at")  # ICTCore is done with that send
        return sent_at is None or answered or time.time() - sent_at >= self._grace

    async def _send(self, ctx: AttemptContext, transmission_id: int) -> SendAnswer:
        sent_at = str(round(time.time(), 3))
        await ctx.note_refs(sent_at=sent_at)
        answer = await self.client.send(transmission_id)
        refs = {} if answer.status is None else {"send_answered": sent_at}  # no longer in flight
        if answer.spool_id is not None:
            refs["spool_id"] = str(answer.spool_id)
        elif answer.status == 200:
            refs["send_unclear"] = "a 200 answer without a spool id"
        if refs:
            await ctx.note_refs(**refs)
        log.info("ictcore.sent", job_id=ctx.job.id, attempt=ctx.attempt.number, transmission_id=transmission_id,
                 spool_id=answer.spool_id, note=answer.note or None)
        return answer

    async def _status(self, transmission_id: int) -> str | None:
        """The status; `""` when ICTCore does not know the transmission; None when the poll failed."""
        try:
            status = await self.client.status(transmission_id)
        except (PlatformError, SettingsError) as exc:
            log.warning("ictcore.poll_failed", transmission_id=transmission_id, error=str(exc))
            return None
        return "" if status is None else status

    async def _outcome(self, transmission_id: int, status: str) -> AttemptEnd:
        """How a finished transmission ended, from its last spool's response."""
        delay = self._poll_min
        for tries_left in range(CREATE_TRIES - 1, -1, -1):
            try:
                spools = await self.client.detail(transmission_id)
            except (PlatformError, SettingsError) as exc:
                log.warning("ictcore.detail_failed", transmission_id=transmission_id, error=str(exc))
                if tries_left:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._poll_max)
                continue
            return outcome_of(status, spools[-1] if spools else None)
        return AttemptEnd(JobState.FAILED, f"ICTCore reported the transmission {status} (its detail could not be read)")

    async def _tried(self, what: str, make: Callable[[], Awaitable[T]]) -> T:
        """`make()`, tried again with backoff on `PlatformUnavailableError` (nothing is dialled yet)."""
        delay = self._poll_min
        for tries_left in range(CREATE_TRIES - 1, -1, -1):
            try:
                return await make()
            except PlatformUnavailableError as exc:
                log.warning("ictcore.create_failed", call=what, error=str(exc), tries_left=tries_left)
                if not tries_left:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._poll_max)
        raise AssertionError("unreachable")


def outcome_of(status: str, spool: Spool | None) -> AttemptEnd:
    """The attempt's end for a transmission that ended `status`, given its last spool."""
    if spool is not None and spool.status == "completed":
        return AttemptEnd(JobState.COMPLETED, "ICTCore completed the transmission")
    response = printable(spool.response if spool is not None else "", 80)
    folded = " ".join(response.lower().replace("_", " ").replace("-", " ").split())
    if folded in _BUSY:
        return AttemptEnd(JobState.BUSY, f"ICTCore: {response}")
    if folded in _NO_ANSWER:
        return AttemptEnd(JobState.NO_ANSWER, f"ICTCore: {response}")
    if response:
        return AttemptEnd(JobState.FAILED, f"ICTCore: {response}")
    if status == "invalid":
        return AttemptEnd(JobState.FAILED, "ICTCore found the transmission invalid")
    return AttemptEnd(JobState.FAILED, f"ICTCore reported the transmission {status} without a reason")


def program_text(job: Job) -> str:
    """What ICTCore's TTS reads: the message, then the code digit by digit with pauses ("4, 3, 8, 4").

    ICTCore's stock TTS is flite's English voice (`core/Gateway/Freeswitch/templates/application/
    tts.json`), whatever the text's language: the words around the code follow the job's language
    all the same. Double quotes and backslashes go: ICTCore pastes the text into a JSON template.
    """
    text = " ".join((job.message or "").replace('"', "'").replace("\\", " ").split())
    if job.code:
        if text and text[-1] not in ".!?":
            text += "."
        intro = _SAY_CODE.get(job.language, _SAY_CODE["en"])
        text = f"{text} {intro}: {', '.join(job.code)}.".strip()
    return text


def _as_int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def _as_float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
