"""A simulated Asterisk: places calls into the service over AGI and plays the caller.

It is the Asterisk side of FastAGI (or runs a classic AGI program), answers every AGI command as
Asterisk 20's res_agi.c does, and keeps a transcript of what the caller heard and pressed. The
end-to-end tests, the load benchmark and `ivr call` use it::

    sounds = SoundLibrary(PromptCatalog.load(default_prompts_dir()), TtsCache(tts_dir))
    result = await place_call("127.0.0.1:4573", "keybox", caller=ScriptedCaller("123456#1234#1"),
                              sounds=sounds)
    assert result.transcript.prompts[:2] == ["welcome", "enter-key-number"]
"""

from __future__ import annotations

from ivr.sim._ami import SimulatedAmi, serve_simulated_ami
from ivr.sim._ami_calls import AmiChannel, AmiOriginate
from ivr.sim._ari_asterisk import SimulatedAri, SimulatedAriChannel
from ivr.sim._ari_place import AriCallResult, place_ari_call
from ivr.sim._asterisk import DEAD_CHANNEL, TRANSFER_VARIABLE, UNKNOWN_COMMAND, SimulatedChannel, typed_entry
from ivr.sim._callers import Caller, InputRequest, InteractiveCaller, ScriptedCaller
from ivr.sim._environment import agi_environment
from ivr.sim._kazoo import MAX_DRIVEN_CALLS, KazooMediaSide
from ivr.sim._pivot import KAZOO_REQUEST_TIMEOUT, PivotCallResult, pivot_call, place_pivot_call
from ivr.sim._place import CallResult, place_call, run_classic_agi
from ivr.sim._sounds import SoundLibrary
from ivr.sim._transcript import Event, EventKind, Transcript

__all__ = [
    "DEAD_CHANNEL",
    "KAZOO_REQUEST_TIMEOUT",
    "MAX_DRIVEN_CALLS",
    "TRANSFER_VARIABLE",
    "UNKNOWN_COMMAND",
    "AmiChannel",
    "AmiOriginate",
    "AriCallResult",
    "CallResult",
    "Caller",
    "Event",
    "EventKind",
    "InputRequest",
    "InteractiveCaller",
    "KazooMediaSide",
    "PivotCallResult",
    "ScriptedCaller",
    "SimulatedAmi",
    "SimulatedAri",
    "SimulatedAriChannel",
    "SimulatedChannel",
    "SoundLibrary",
    "Transcript",
    "agi_environment",
    "pivot_call",
    "place_ari_call",
    "place_call",
    "place_pivot_call",
    "run_classic_agi",
    "serve_simulated_ami",
    "typed_entry",
]
