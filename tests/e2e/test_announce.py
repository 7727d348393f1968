"""The announce route: an outbound call speaks its job's message (and code), offers to say it
again, says goodbye — read from the job in the store, as the dialplan names it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from support.line import Line, MakeLine

from ivr.outbound import Job, Outbound
from ivr.records import Outcome


async def held_job(line: Line, **fields: Any) -> Job:
    """A notice job held for tomorrow, so that only the test's own call delivers it."""
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    job, _ = await Outbound(line.service.services.store, line.settings).submit(  # type: ignore[arg-type]
        {"kind": "notice", "to": "5551234", "not_before": tomorrow, **fields})
    return job


async def test_the_message_then_the_menu_then_goodbye(line: Line) -> None:
    job = await held_job(line, message="Your showing at 12 Elm Street is confirmed.")
    call = await line.call("", route="announce", query={"job": job.id, "attempt": f"{job.id}-1"})

    assert call.heard.spoken == ["Your showing at 12 Elm Street is confirmed."]
    assert call.prompts == ["announce-menu", "goodbye"]
    assert call.record.outcome is Outcome.ANNOUNCED
    assert call.record.attempt_id == f"{job.id}-1"
    assert line.requests("HealthCheck") == 0


async def test_one_hears_it_again_and_the_code_digit_by_digit_in_the_jobs_language(make_line: MakeLine) -> None:
    async with make_line(languages=["en", "fr"]) as line:
        job = await held_job(line, message="Votre code de mise à jour est", language="fr", code="4719283")
        call = await line.call("1", route="announce", query={"job": job.id})

    assert call.heard.spoken == ["Votre code de mise à jour est"] * 2
    assert call.heard.said_digits == ["4719283", "4719283"]
    assert call.prompts == ["announce-menu", "announce-menu", "goodbye"]
    assert call.record.language == "fr"
    assert call.record.outcome is Outcome.ANNOUNCED
    assert call.record.codes == ["*****83"]


async def test_pressing_1_again_and_again_is_bounded(line: Line) -> None:
    job = await held_job(line, message="Hello.")
    call = await line.call("1111111", route="announce", query={"job": job.id})
    assert call.heard.spoken == ["Hello."] * 4
    assert call.prompts[-1] == "goodbye"


async def test_an_unknown_job_is_logged_and_hung_up(line: Line) -> None:
    call = await line.call("", route="announce", query={"job": "nope"})
    assert call.prompts == []
    assert call.heard.hung_up_by == "service"
    assert call.record.outcome is Outcome.ERROR
    assert call.record.detail == "no announcement for job 'nope'"


async def test_a_cancelled_job_says_nothing(line: Line) -> None:
    job = await held_job(line, message="Hello.")
    await Outbound(line.service.services.store, line.settings).cancel(job.id)  # type: ignore[arg-type]
    call = await line.call("", route="announce", query={"job": job.id})
    assert call.heard.spoken == []
    assert call.record.outcome is Outcome.ERROR
