"""The `announce` route: an outbound call the service placed speaks its job's message.

The dialplan names the job: `AGI(agi://ivr:4573/announce?job=${IVR_JOB_ID})`.
"""

from __future__ import annotations

from ivr.flow.dialog import Dialog, EndCall
from ivr.flow.services import Services
from ivr.logging import get_logger
from ivr.records import Announcement, Outcome

log = get_logger("ivr.flow")

TIMES = 2  # said twice: whoever answers may have missed the start
INTROS = {"update": "your-update-code-is", "cbs": "your-cbs-code-is"}
OUTCOMES = {"update": Outcome.UPDATE_CODE_READ, "cbs": Outcome.CBS_CODE_READ}


async def announce(d: Dialog, s: Services) -> Outcome:
    job_id = d.call.variables.get("job", "")
    job = await s.announcements.announcement(job_id) if job_id else None
    if job is None:
        log.error("flow.unknown_job", job_id=job_id)
        d.record.detail = f"no announcement for job {job_id!r}"
        await d.call.hangup()
        return Outcome.ERROR
    await d.call.answer()
    if job.language in s.settings.languages and job.language != d.record.language:
        await d.call.set_language(job.language)
        d.record.language = job.language
    for _ in range(TIMES):
        d.step("announce")
        await say(d, job)
    raise EndCall(OUTCOMES[job.code_type] if job.code else Outcome.ANNOUNCED, f"job {job_id}")


async def say(d: Dialog, job: Announcement) -> None:
    if job.code:
        await d.read_code(INTROS[job.code_type], job.code)
    await d.speak(job.message)
