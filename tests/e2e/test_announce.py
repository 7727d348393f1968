"""The announce route: an outbound call speaks its job's message (and code)."""

from __future__ import annotations

from support.line import Line, MakeLine

from ivr.records import Announcement, Outcome


async def test_a_message_is_said_twice_then_goodbye(line: Line) -> None:
    await line.service.services.announcements.add_announcement(
        Announcement(job_id="job-1", message="Your showing at 12 Elm Street is confirmed.")
    )
    call = await line.call("", route="announce", query={"job": "job-1"})

    assert call.heard.spoken == ["Your showing at 12 Elm Street is confirmed."] * 2
    assert call.prompts == ["goodbye"]
    assert call.record.outcome is Outcome.ANNOUNCED
    assert line.requests("HealthCheck") == 0


async def test_a_code_is_read_digit_by_digit_in_the_jobs_language(make_line: MakeLine) -> None:
    async with make_line(languages=["en", "fr"]) as line:
        await line.service.services.announcements.add_announcement(
            Announcement(job_id="job-2", message="Entrez le code.", language="fr", code="4719283")
        )
        call = await line.call("", route="announce", query={"job": "job-2"})

    assert call.prompts == ["your-update-code-is", "your-update-code-is", "goodbye"]
    assert call.heard.said_digits == ["4719283", "4719283"]
    assert call.record.language == "fr"
    assert call.record.outcome is Outcome.UPDATE_CODE_READ
    assert call.record.codes == ["*****83"]


async def test_an_unknown_job_is_logged_and_hung_up(line: Line) -> None:
    call = await line.call("", route="announce", query={"job": "nope"})
    assert call.prompts == []
    assert call.heard.hung_up_by == "service"
    assert call.record.outcome is Outcome.ERROR
    assert call.record.detail == "no announcement for job 'nope'"
