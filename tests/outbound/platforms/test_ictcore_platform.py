"""The ICTCore platform placing and following `notice` calls through the sandbox, on real sockets.

Every test ends by checking the sandbox's own count of calls: never two for one attempt.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Callable

import pytest
from support.outbound import RecordingContext, make_job

from ivr.errors import PlatformRejectedError, PlatformUnavailableError, SettingsError
from ivr.outbound import Job, JobKind, JobState
from ivr.outbound.platforms.ictcore import IctCorePlatform, Spool, outcome_of, program_text
from ivr.outbound.platforms.ictcore.sandbox import (
    BUSY_NUMBER,
    FAILED_NUMBER,
    NO_ANSWER_NUMBER,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
    IctCoreKnobs,
    IctCoreSandbox,
    IctCoreSandboxServer,
)

TIMEOUT = 1.0
"""The client's deadline in these tests; the grace for a send without an answer is three of them."""


@pytest.fixture
async def server() -> AsyncIterator[IctCoreSandboxServer]:
    async with IctCoreSandboxServer(IctCoreSandbox(IctCoreKnobs(call_seconds=0.05))) as running:
        yield running


def new_platform(url: str, **options: float) -> IctCorePlatform:
    settings: dict[str, float] = {"timeout": TIMEOUT, "poll_min": 0.01, "poll_max": 0.05} | options
    return IctCorePlatform(url, SANDBOX_USERNAME, SANDBOX_PASSWORD, **settings)


@pytest.fixture
async def platform(server: IctCoreSandboxServer) -> AsyncIterator[IctCorePlatform]:
    ictcore = new_platform(server.url)
    await ictcore.start()
    yield ictcore
    await ictcore.close()


def notice(to: str = "5550123", **fields: str | None) -> Job:
    return make_job(JobKind.NOTICE, to=to, via="ictcore", **fields)  # type: ignore[arg-type]


class WatchingContext(RecordingContext):
    """A RecordingContext that calls `on_note(refs)` whenever refs are noted, and stays in the
    store write for good once it noted `hang_after` (the service stops there)."""

    def __init__(self, job: Job, on_note: Callable[[dict[str, str]], None], hang_after: str | None = None) -> None:
        super().__init__(job)
        self._on_note = on_note
        self._hang_after = hang_after
        self.notes: list[dict[str, str]] = []

    async def note_refs(self, **refs: str) -> None:
        await super().note_refs(**refs)
        self.notes.append(refs)
        self._on_note(refs)
        if self._hang_after in refs:
            await asyncio.Event().wait()


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


def one_call(server: IctCoreSandboxServer, ctx: RecordingContext) -> int:
    """The attempt's transmission id, after checking ICTCore placed exactly one call in all."""
    transmission_id = int(ctx.attempt.refs["transmission_id"])
    assert dict(server.sandbox.calls) == {transmission_id: 1}
    return transmission_id


# -- outcomes ------------------------------------------------------------------------------

@pytest.mark.parametrize(("number", "state", "reason"), [
    ("5550123", JobState.COMPLETED, "ICTCore completed the transmission"),
    (BUSY_NUMBER, JobState.BUSY, "ICTCore: busy"),
    (NO_ANSWER_NUMBER, JobState.NO_ANSWER, "ICTCore: no answer"),
    (FAILED_NUMBER, JobState.FAILED, "ICTCore: invalid number"),
])
async def test_each_outcome(server: IctCoreSandboxServer, platform: IctCorePlatform, number: str,
                            state: JobState, reason: str) -> None:
    ctx = RecordingContext(notice(number))
    end = await platform.place(ctx)
    assert (end.state, end.reason) == (state, reason)
    transmission_id = one_call(server, ctx)
    assert ctx.attempt.refs["spool_id"] == str(server.sandbox.transmissions[transmission_id].spools[0]["spool_id"])
    assert server.sandbox.sends[transmission_id] == 1


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("as_object", [False, True])
async def test_both_id_and_status_shapes(server: IctCoreSandboxServer, platform: IctCorePlatform, flip: bool,
                                         as_object: bool) -> None:
    server.sandbox.knobs.flip_ids, server.sandbox.knobs.status_as_object = flip, as_object
    ctx = RecordingContext(notice())
    assert (await platform.place(ctx)).state is JobState.COMPLETED
    one_call(server, ctx)


async def test_the_number_goes_as_digits_and_the_code_digit_by_digit(server: IctCoreSandboxServer,
                                                                     platform: IctCorePlatform) -> None:
    ctx = RecordingContext(notice("+15550123", code="4384", language="fr", message='Bonjour "Marie"'))
    assert (await platform.place(ctx)).state is JobState.COMPLETED
    (contact,) = server.sandbox.contacts.values()
    assert contact["phone"] == "15550123"
    (program,) = server.sandbox.programs.values()
    assert program["text"] == "Bonjour 'Marie'. Votre code est: 4, 3, 8, 4."
    one_call(server, ctx)


async def test_the_contact_of_a_number_is_reused(server: IctCoreSandboxServer, platform: IctCorePlatform) -> None:
    for _ in range(2):
        assert (await platform.place(RecordingContext(notice()))).state is JobState.COMPLETED
    assert len(server.sandbox.contacts) == 1
    assert sum(server.sandbox.calls.values()) == 2 and len(server.sandbox.calls) == 2


async def test_refs_are_noted_before_the_send(server: IctCoreSandboxServer, platform: IctCorePlatform) -> None:
    seen: list[tuple[str, int]] = []

    def on_note(refs: dict[str, str]) -> None:
        for key in refs:
            seen.append((key, sum(server.sandbox.sends.values())))

    ctx = WatchingContext(notice(), on_note)
    assert (await platform.place(ctx)).state is JobState.COMPLETED
    before = {key for key, sends in seen if sends == 0}
    assert {"contact_id", "program_id", "transmission_id", "sent_at"} <= before
    assert ("spool_id", 1) in seen
    one_call(server, ctx)


# -- faults --------------------------------------------------------------------------------

async def test_412_is_rejected_and_not_retried(server: IctCoreSandboxServer, platform: IctCorePlatform) -> None:
    server.sandbox.knobs.fail_next = [412]
    with pytest.raises(PlatformRejectedError, match="412"):
        await platform.place(RecordingContext(notice()))
    assert server.sandbox.requests["GET /contacts"] == 1
    assert server.sandbox.transmissions == {} and not server.sandbox.sends


async def test_500_and_423_before_the_send_are_retried_with_backoff(server: IctCoreSandboxServer,
                                                                    platform: IctCorePlatform) -> None:
    server.sandbox.knobs.fail_next = [500, 423]
    ctx = RecordingContext(notice())
    assert (await platform.place(ctx)).state is JobState.COMPLETED
    assert server.sandbox.statuses["GET /contacts", 500] == 1
    assert server.sandbox.statuses["GET /contacts", 423] == 1
    one_call(server, ctx)


async def test_creates_that_keep_failing_are_unavailable_with_nothing_sent(server: IctCoreSandboxServer,
                                                                          platform: IctCorePlatform) -> None:
    server.sandbox.knobs.fail_next = [503] * 3
    with pytest.raises(PlatformUnavailableError, match="503"):
        await platform.place(RecordingContext(notice()))
    assert not server.sandbox.sends


async def test_polls_that_fail_are_retried(server: IctCoreSandboxServer, platform: IctCorePlatform) -> None:
    def on_note(refs: dict[str, str]) -> None:
        if "spool_id" in refs:
            server.sandbox.knobs.fail_next = [500, 502, 423]

    ctx = WatchingContext(notice(), on_note)
    assert (await platform.place(ctx)).state is JobState.COMPLETED
    assert server.sandbox.statuses["GET /transmissions/{id}/status", 500] == 1
    one_call(server, ctx)


async def test_a_connection_lost_while_following_is_retried(server: IctCoreSandboxServer,
                                                            platform: IctCorePlatform) -> None:
    server.sandbox.knobs.call_seconds = 0.2

    def on_note(refs: dict[str, str]) -> None:
        if "spool_id" in refs:
            server.sandbox.knobs.down = True

    ctx = WatchingContext(notice(), on_note)
    placing = asyncio.create_task(platform.place(ctx))
    await until(lambda: server.sandbox.requests["(down)"] >= 2)
    server.sandbox.knobs.down = False
    assert (await asyncio.wait_for(placing, 10)).state is JobState.COMPLETED
    one_call(server, ctx)


async def test_an_empty_200_from_a_create_places_nothing(server: IctCoreSandboxServer,
                                                         platform: IctCorePlatform) -> None:
    server.sandbox.knobs.empty_create_body = True
    ctx = RecordingContext(notice())
    with pytest.raises(PlatformUnavailableError, match="without the new id"):
        await platform.place(ctx)
    assert not server.sandbox.sends and "transmission_id" not in ctx.attempt.refs
    server.sandbox.knobs.empty_create_body = False
    assert (await platform.place(ctx)).state is JobState.COMPLETED  # the runner's retry
    one_call(server, ctx)


async def test_an_empty_200_from_send_is_followed_never_sent_again(server: IctCoreSandboxServer,
                                                                  platform: IctCorePlatform) -> None:
    server.sandbox.knobs.empty_send_body = True
    ctx = RecordingContext(notice(BUSY_NUMBER))
    end = await platform.place(ctx)
    assert (end.state, end.reason) == (JobState.BUSY, "ICTCore: busy")
    assert "spool_id" not in ctx.attempt.refs and "send_unclear" in ctx.attempt.refs
    transmission_id = one_call(server, ctx)
    assert server.sandbox.sends[transmission_id] == 1
    # after a restart too: the refs say the send may have been queued
    again = new_platform(server.url)
    try:
        assert (await again.follow(ctx)).state is JobState.BUSY
    finally:
        await again.close()
    assert server.sandbox.sends[transmission_id] == 1


async def test_a_send_answered_500_placed_nothing_and_the_next_place_sends_it(server: IctCoreSandboxServer,
                                                                              platform: IctCorePlatform) -> None:
    def on_note(refs: dict[str, str]) -> None:
        if "transmission_id" in refs:
            server.sandbox.knobs.fail_next = [500]  # the send's answer

    ctx = WatchingContext(notice(), on_note)
    with pytest.raises(PlatformUnavailableError, match="nothing was dialled"):
        await platform.place(ctx)
    transmission_id = int(ctx.attempt.refs["transmission_id"])
    assert not server.sandbox.calls
    assert (await platform.place(ctx)).state is JobState.COMPLETED  # the same transmission, sent once
    assert len(server.sandbox.transmissions) == 1
    assert server.sandbox.sends[transmission_id] == 1
    one_call(server, ctx)


async def test_a_follow_without_an_outcome_is_bounded(server: IctCoreSandboxServer) -> None:
    server.sandbox.knobs.call_seconds = 60
    ictcore = new_platform(server.url, follow_limit=0.2)
    try:
        ctx = RecordingContext(notice())
        end = await ictcore.place(ctx)
    finally:
        await ictcore.close()
    assert (end.state, end.reason) == (JobState.FAILED, "ICTCore never reported an outcome")
    one_call(server, ctx)


async def test_a_bridge_is_refused(platform: IctCorePlatform) -> None:
    job = make_job(JobKind.BRIDGE, via="ictcore", agent="PJSIP/agent1")
    with pytest.raises(PlatformRejectedError, match="bridge"):
        await platform.place(RecordingContext(job))


# -- start ---------------------------------------------------------------------------------

async def test_start_with_wrong_credentials_names_the_settings(server: IctCoreSandboxServer) -> None:
    ictcore = IctCorePlatform(server.url, SANDBOX_USERNAME, "wrong-secret-77", timeout=TIMEOUT)
    try:
        with pytest.raises(SettingsError) as caught:
            await ictcore.start()
    finally:
        await ictcore.close()
    assert "IVR_ICTCORE_PASSWORD" in str(caught.value) and "wrong-secret-77" not in str(caught.value)


async def test_start_with_ictcore_unreachable_is_not_an_error() -> None:
    stopped = IctCoreSandboxServer()
    await stopped.start()
    await stopped.stop()
    ictcore = new_platform(stopped.url)
    try:
        await ictcore.start()
    finally:
        await ictcore.close()


# -- after a restart -----------------------------------------------------------------------

async def test_follow_after_a_restart_of_a_call_still_in_progress(server: IctCoreSandboxServer,
                                                                  platform: IctCorePlatform) -> None:
    server.sandbox.knobs.call_seconds = 0.5
    spooled = asyncio.Event()
    ctx = WatchingContext(notice(NO_ANSWER_NUMBER), lambda refs: spooled.set() if "spool_id" in refs else None)
    placing = asyncio.create_task(platform.place(ctx))
    await asyncio.wait_for(spooled.wait(), 5)
    placing.cancel()  # the service stops
    with pytest.raises(asyncio.CancelledError):
        await placing
    transmission_id = int(ctx.attempt.refs["transmission_id"])
    assert server.sandbox.transmissions[transmission_id].status == "processing"
    restarted = new_platform(server.url)
    try:
        await restarted.start()
        end = await asyncio.wait_for(restarted.follow(RecordingContext(ctx.job)), 10)
    finally:
        await restarted.close()
    assert (end.state, end.reason) == (JobState.NO_ANSWER, "ICTCore: no answer")
    assert server.sandbox.sends[transmission_id] == 1
    one_call(server, ctx)


async def test_follow_after_a_restart_of_a_call_already_completed(server: IctCoreSandboxServer,
                                                                  platform: IctCorePlatform) -> None:
    spooled = asyncio.Event()
    ctx = WatchingContext(notice(), lambda refs: spooled.set() if "spool_id" in refs else None)
    placing = asyncio.create_task(platform.place(ctx))
    await asyncio.wait_for(spooled.wait(), 5)
    placing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await placing
    transmission_id = int(ctx.attempt.refs["transmission_id"])
    await until(lambda: server.sandbox.transmissions[transmission_id].status == "completed")
    restarted = new_platform(server.url)
    try:
        end = await restarted.follow(RecordingContext(ctx.job))
    finally:
        await restarted.close()
    assert end.state is JobState.COMPLETED
    assert server.sandbox.sends[transmission_id] == 1
    one_call(server, ctx)


async def test_follow_sends_a_transmission_that_was_never_sent(server: IctCoreSandboxServer,
                                                               platform: IctCorePlatform) -> None:
    stop_before_send = asyncio.Event()

    def on_note(refs: dict[str, str]) -> None:
        if "transmission_id" in refs:
            stop_before_send.set()

    ctx = WatchingContext(notice(), on_note, hang_after="transmission_id")
    placing = asyncio.create_task(platform.place(ctx))
    await asyncio.wait_for(stop_before_send.wait(), 5)
    placing.cancel()  # stopped between noting the refs and the send
    with pytest.raises(asyncio.CancelledError):
        await placing
    transmission_id = int(ctx.attempt.refs["transmission_id"])
    assert server.sandbox.transmissions[transmission_id].status == "pending" and not server.sandbox.sends
    restarted = new_platform(server.url)
    try:
        end = await restarted.follow(RecordingContext(ctx.job))
    finally:
        await restarted.close()
    assert end.state is JobState.COMPLETED
    assert server.sandbox.sends[transmission_id] == 1
    one_call(server, ctx)


async def test_follow_of_an_attempt_with_no_transmission_places_its_one_call(server: IctCoreSandboxServer) -> None:
    ctx = RecordingContext(notice())
    restarted = new_platform(server.url)
    try:
        assert (await restarted.follow(ctx)).state is JobState.COMPLETED
    finally:
        await restarted.close()
    one_call(server, ctx)


async def test_follow_of_a_transmission_ictcore_forgot_ends_failed(server: IctCoreSandboxServer,
                                                                  platform: IctCorePlatform) -> None:
    ctx = RecordingContext(notice())
    ctx.attempt.refs.update(transmission_id="987654", spool_id="1")
    end = await platform.follow(ctx)
    assert end.state is JobState.FAILED and "no longer knows" in end.reason
    assert not server.sandbox.sends


# -- the text and the outcome --------------------------------------------------------------

def test_the_program_text_in_each_language() -> None:
    assert program_text(notice(code="1203")) == (
        "Your showing at 12 Elm Street is confirmed. Your code is: 1, 2, 0, 3.")
    assert program_text(notice(code="1203", language="es", message="Hola")) == "Hola. Su código es: 1, 2, 0, 3."
    assert program_text(notice(message="Line one\nline two")) == "Line one line two"


@pytest.mark.parametrize(("response", "state"), [
    ("USER_BUSY", JobState.BUSY), ("busy", JobState.BUSY), ("NORMAL_CIRCUIT_CONGESTION", JobState.BUSY),
    ("NO_ANSWER", JobState.NO_ANSWER), ("noanswer", JobState.NO_ANSWER), ("timeout", JobState.NO_ANSWER),
    ("NO_USER_RESPONSE", JobState.NO_ANSWER), ("UNALLOCATED_NUMBER", JobState.FAILED),
])
def test_outcomes_from_a_spools_response(response: str, state: JobState) -> None:
    assert outcome_of("failed", Spool(1, "failed", response)).state is state


def test_a_response_is_bounded_and_printable() -> None:
    end = outcome_of("failed", Spool(1, "failed", "bad\x00\x1b[31m" + "x" * 500))
    assert end.state is JobState.FAILED and end.reason.isprintable() and len(end.reason) < 100
    assert outcome_of("invalid", None).reason == "ICTCore found the transmission invalid"
    assert outcome_of("done", Spool(1, "completed", "")).state is JobState.COMPLETED


# -- logs ----------------------------------------------------------------------------------


async def test_the_code_is_never_logged_whole(server: IctCoreSandboxServer, log_text: io.StringIO) -> None:
    ictcore = new_platform(server.url)
    try:
        assert (await ictcore.place(RecordingContext(notice(code="98765432")))).state is JobState.COMPLETED
    finally:
        await ictcore.close()
    lines = [json.loads(line) for line in log_text.getvalue().splitlines()]
    text = "\n".join(json.dumps({k: v for k, v in e.items() if k != "timestamp"}) for e in lines)
    assert "ictcore.prepare" in text and "******32" in text
    assert "98765432" not in text and "9, 8, 7" not in text and SANDBOX_PASSWORD not in text


async def test_a_contact_deleted_in_ictcore_is_made_again_next_time(server: IctCoreSandboxServer,
                                                                   platform: IctCorePlatform) -> None:
    assert (await platform.place(RecordingContext(notice()))).state is JobState.COMPLETED
    server.sandbox.contacts.clear()  # someone tidied ICTCore's contacts
    with pytest.raises(PlatformRejectedError, match="412"):
        await platform.place(RecordingContext(notice()))
    assert (await platform.place(RecordingContext(notice()))).state is JobState.COMPLETED
    assert len(server.sandbox.contacts) == 1 and sum(server.sandbox.calls.values()) == 2
