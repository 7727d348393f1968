"""The `announce` route: an outbound call the service placed speaks its job's message.

The dialplan names the job and the attempt:
`AGI(agi://ivr:4573/announce?job=${IVR_JOB_ID}&attempt=${IVR_ATTEMPT_ID})`. The attempt goes
into the call record, which is how the outbound runner learns that the message was delivered.
"""

from __future__ import annotations

from ivr.flow.dialog import Dialog, EndCall
from ivr.flow.services import Services
from ivr.logging import get_logger
from ivr.records import Outcome

log = get_logger("ivr.flow")

AGAIN = "1"
REPEATS = 3
"""Times the callee may press 1 to hear it again: enough for a pen, not a loop without end."""


async def announce(d: Dialog, s: Services) -> Outcome:
    job_id = d.call.variables.get("job", "")
    d.record.attempt_id = d.call.variables.get("attempt") or None
    job = await s.announcements.announcement(job_id) if job_id else None
    if job is None:
        log.error("flow.unknown_job", job_id=job_id[:64])
        d.record.detail = f"no announcement for job {job_id!r}"
        await d.call.hangup()
        return Outcome.ERROR
    await d.call.answer()
    if job.language in s.settings.languages and job.language != d.record.language:
        await d.call.set_language(job.language)
        d.record.language = job.language
    for _ in range(1 + REPEATS):
        d.step("announce")
        await d.speak(job.message)
        if job.code:
            await d.read_code(None, job.code)
        d.step("announce-menu")
        entry = await d.call.read_digits("keybox/announce-menu", d.config.entry_timeout_ms, 1)
        if entry.digits != AGAIN:
            break
    raise EndCall(Outcome.ANNOUNCED, f"job {job_id}")
