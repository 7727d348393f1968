"""What an agent gets on a transfer: the key number, where the caller was, and the call id
that finds the call's record (`ivr calls <IVR_CALL_ID>`). The dialplan (keybox-operator) turns
these variables into the caller's name on the agent's phone and an X-Keybox-Call header."""

from __future__ import annotations

from support.line import Line


async def test_a_transfer_passes_the_call_id_the_key_and_the_step(line: Line) -> None:
    call = await line.call("123456#2580#0")

    variables = call.heard.variables
    assert call.heard.transferred_to
    assert variables["IVR_CALL_ID"] == call.record.call_id != ""
    assert variables["IVR_KEY_NUMBER"] == "123456"
    assert variables["IVR_LAST_STEP"] == "choose-code-type"
    # The id the agent is given finds the record `ivr calls` shows.
    found = await line.service.services.records.get(variables["IVR_CALL_ID"])
    assert found is not None and found.call_id == call.record.call_id
    names = [e.value.partition("=")[0] for e in call.heard.events if e.kind == "variable"]
    if line.transport == "pivot":
        # Kazoo has no dialplan to hand over to: `set_variables`, then the agents' callflow.
        kinds = [e.kind for e in call.heard.events]
        assert "IVR_TRANSFER" not in names
        assert len(kinds) - 1 - kinds[::-1].index("variable") < kinds.index("transfer")
        assert call.heard.transferred_to == line.agents
    else:
        # Before the hand-over: the channel continues in the dialplan once IVR_TRANSFER is set.
        assert names.index("IVR_CALL_ID") < names.index("IVR_TRANSFER")


async def test_a_transfer_before_the_key_is_accepted_shows_it_masked(line: Line) -> None:
    call = await line.call("123456#*0#")

    variables = call.heard.variables
    assert variables["IVR_LAST_STEP"] == "enter-pin"
    assert variables["IVR_CALL_ID"] == call.record.call_id
    # Not yet accepted by KimVoice: what the record shows, never a PIN.
    assert variables["IVR_KEY_NUMBER"] == call.record.key_shown
    assert set(variables["IVR_KEY_NUMBER"]) <= set("0123456789*")
