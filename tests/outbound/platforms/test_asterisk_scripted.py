"""`AsteriskPlatform` against the scripted AMI peer, for what the simulated Asterisk does not
produce on its own: every OriginateResponse Reason, and an Originate whose outcome never comes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from support.ami_peer import SECRET, Connection, Received, ScriptedAmi
from support.outbound import RecordingContext, make_job

from ivr.outbound import AttemptEnd, JobKind, JobState
from ivr.outbound.platforms.asterisk import AsteriskPlatform
from ivr.records import CallRecord, Outcome


def reason_is(reason: str) -> Any:
    def originate(connection: Connection, action: Received) -> None:
        connection.answer(action, Message="Originate successfully queued")
        connection.send(("Event", "OriginateResponse"), ("ActionID", action.get("ActionID")),
                        ("Response", "Failure"), ("Channel", action.get("Channel")), ("Reason", reason),
                        ("Uniqueid", action.get("ChannelId")))
    return originate


def queued_then_nothing(connection: Connection, action: Received) -> None:
    connection.answer(action, Message="Originate successfully queued")


@pytest.fixture
async def peer() -> AsyncIterator[ScriptedAmi]:
    async with ScriptedAmi() as server:
        yield server


@pytest.fixture
async def asterisk(peer: ScriptedAmi) -> AsyncIterator[AsteriskPlatform]:
    started = AsteriskPlatform(host="127.0.0.1", port=peer.port, username="keybox", secret=SECRET,
                               ring_seconds=0.1, guard_margin=0.1, action_timeout=1.0, record_wait=0.1)
    await started.start()
    yield started
    await started.close()


@pytest.mark.parametrize(("reason", "kind", "state", "text"), [
    ("0", JobKind.NOTICE, JobState.FAILED, "the call could not be placed"),
    ("1", JobKind.NOTICE, JobState.NO_ANSWER, "no answer (hung up while ringing)"),
    ("3", JobKind.NOTICE, JobState.NO_ANSWER, "no answer"),
    ("5", JobKind.NOTICE, JobState.BUSY, "busy"),
    ("8", JobKind.NOTICE, JobState.BUSY, "congestion"),
    ("2", JobKind.NOTICE, JobState.FAILED, "the call could not be placed (Reason 2)"),
    ("3", JobKind.BRIDGE, JobState.NO_ANSWER, "agent: no answer"),
])
async def test_each_originate_response_reason(peer: ScriptedAmi, asterisk: AsteriskPlatform, reason: str,
                                              kind: JobKind, state: JobState, text: str) -> None:
    peer.handlers["originate"] = reason_is(reason)
    ctx = RecordingContext(make_job(kind, agent="PJSIP/agent1" if kind is JobKind.BRIDGE else None))
    assert await asterisk.place(ctx) == AttemptEnd(state, text)
    assert len(peer.actions("originate")) == 1 and peer.actions("originate")[0].get("Async") == "true"


async def test_no_outcome_reported_and_no_call_found_is_no_answer(peer: ScriptedAmi,
                                                                  asterisk: AsteriskPlatform) -> None:
    peer.handlers["originate"] = queued_then_nothing
    ctx = RecordingContext(make_job())
    assert await asterisk.place(ctx) == AttemptEnd(JobState.NO_ANSWER, "no answer reported; no call found")
    assert len(peer.actions("coreshowchannels")) == 1 and len(peer.actions("originate")) == 1


async def test_no_outcome_reported_but_a_record_is_completed(peer: ScriptedAmi, asterisk: AsteriskPlatform) -> None:
    peer.handlers["originate"] = queued_then_nothing
    ctx = RecordingContext(make_job())
    ctx.record_arrived(CallRecord(call_id="c1", route="announce", caller_id="", attempt_id=ctx.attempt.id,
                                  outcome=Outcome.ANNOUNCED))
    assert await asterisk.place(ctx) == AttemptEnd(JobState.COMPLETED, "announced")


async def test_an_originate_with_no_answer_at_all_is_found_again_not_sent_again(peer: ScriptedAmi,
                                                                              asterisk: AsteriskPlatform) -> None:
    peer.handlers["originate"] = lambda _connection, _action: None  # not even the Response
    ctx = RecordingContext(make_job())
    end = await asterisk.place(ctx)
    assert end == AttemptEnd(JobState.NO_ANSWER, "no answer reported; no call found")
    assert len(peer.actions("originate")) == 1


async def test_a_refused_channel_listing_is_never_taken_for_a_call_gone(peer: ScriptedAmi) -> None:
    peer.handlers["originate"] = queued_then_nothing
    peer.handlers["coreshowchannels"] = lambda connection, action: connection.answer(
        action, "Error", Message="Permission denied")
    patient = AsteriskPlatform(host="127.0.0.1", port=peer.port, username="keybox", secret=SECRET, ring_seconds=0.1,
                               guard_margin=0.1, action_timeout=0.1, lost_patience=0.5)
    await patient.start()
    end = await patient.place(RecordingContext(make_job()))
    assert end.state is JobState.FAILED and "could not be looked up" in end.reason and "Permission denied" in end.reason
    assert len(peer.actions("originate")) == 1 and len(peer.actions("coreshowchannels")) >= 2
    await patient.close()
