"""A key number is its value: typed with leading zeros it is the same key, with the same lockout."""

from __future__ import annotations

from support.line import Line

from ivr.records import Outcome


async def test_leading_zeros_do_not_get_a_locked_key_fresh_guesses(line: Line) -> None:
    """`0123456` is key 123456 (KimVoice is asked about the value): once 123456 is locked, every
    spelling of it hears `key-locked`, the right PIN too, and KimVoice is not asked."""
    await line.call("123456#1111#" "123456#1112#" "123456#1113#", caller_id="+15555550711")
    locking = await line.call("123456#1114#" "123456#1115#", caller_id="+15555550712")
    assert locking.record.outcome is Outcome.KEY_LOCKED
    guesses = line.requests("GetKeyHolders")

    for n, spelled in enumerate(("0123456", "000123456")):
        call = await line.call(f"{spelled}#2580#19", caller_id=f"+1555555072{n}")
        assert call.prompts == ["welcome", "enter-key-number", "key-locked", "goodbye"]
        assert (call.record.outcome, call.record.detail) == (Outcome.KEY_LOCKED, "key locked")
        assert call.record.key_entered == "****56"
    assert line.requests("GetKeyHolders") == guesses
