"""Kazoo Pivot's side of the wire: the request parameters it sends and the callflow JSON it runs.

What this relies on (Kazoo's source, 2600hz/kazoo):

* Parameters (``core/kazoo_translator/src/converters/kzt_kazoo.erl`` ``req_params/1``, sent when
  the pivot module has ``req_format: kazoo``; without it ``pivot_call.erl`` defaults to TwiML's):
  ``Call-ID``, ``Caller-ID-Number``, ``Caller-ID-Name``, ``To``, ``From``, ``Account-ID``,
  ``Language``, ``Direction`` (always ``inbound``), ``Custom-Application-Vars``, ``Digits``.
* ``Digits`` is the call's DTMF collections object (``kzt_util:get_digit_pressed/1``), flattened by
  ``kz_http_util:json_to_querystring/1`` to ``Digits[<collection_name>]=...`` with the brackets
  left as they are, in the GET query or the POST form (``req_body_format: json`` sends it as an
  object). Collections persist for the whole call, so every later request carries them again.
* ``collect_dtmf`` (``applications/callflow/src/module/cf_collect_dtmf.erl``): ``max_digits``
  (default 1), ``timeout`` in ms for the first key (default 5000), ``interdigit_timeout`` (default
  2000, ``kapps_call_command.erl``), ``terminator`` (default ``#``, not included),
  ``collection_name`` (default ``default``); keys pressed during an earlier
  ``play`` (kept in the ``default`` collection by ``cf_util:wait_for_noop``) count as the first.
* ``play``'s ``terminators`` default to every key (``kapps_call_command:play_terminators``); an
  empty list makes a sound that no key cuts short.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "COLLECTION",
    "INVALID_ENTRY",
    "KAZOO_PARAMETERS",
    "MAX_DIGITS_LENGTH",
    "Module",
    "base_name",
    "callflow",
    "collect_dtmf",
    "custom_vars",
    "digits_of",
    "hangup",
    "pivot",
    "play",
    "play_interruptible",
    "set_variables",
    "transfer",
]

COLLECTION = "ivr"
"""Our one DTMF collection name: each `collect_dtmf` overwrites it, so an old PIN is not sent on."""

INVALID_ENTRY = "?"
"""What the flow gets for `Digits` that no keypad typed (letters, thousands of characters): no
validator accepts it and no menu has it as an option, so the caller hears `invalid-entry`."""

MAX_DIGITS_LENGTH = 64
"""Longer than any question asks for (10 digits); more is not a keypad's doing."""

_KEYS = re.compile(r"[0-9*#]*")

KAZOO_PARAMETERS = frozenset({
    "Account-ID", "Api-Version", "Call-ID", "Call-Status", "Caller-ID-Name", "Caller-ID-Number",
    "Custom-Application-Vars", "Custom-SIP-Headers", "Digits", "Direction", "From", "From-Realm", "Language",
    "Recording-Duration", "Recording-ID", "Recording-Url", "Request", "Request-Realm", "To", "To-Realm",
    "Transcription-ID", "Transcription-Status", "Transcription-Text", "Transcription-Url", "User-ID",
})
"""The parameters `kzt_kazoo:req_params/1` sends; anything else in a query is ours (the route's)."""


def base_name(key: str) -> str:
    """`Digits[ivr]` -> `Digits`; `Call-ID` -> `Call-ID`."""
    return key.partition("[")[0]


def digits_of(params: Mapping[str, Any]) -> str | None:
    """The keys collected into our collection, without the terminator: None when there is none,
    `INVALID_ENTRY` when the value is not what a keypad sends.

    Accepts the flattened form (`Digits[ivr]`), the JSON body's object, and the old plain
    string (`Digits=123`, which `collect.md` still documents)."""
    value: Any = params.get(f"Digits[{COLLECTION}]")
    if value is None:
        digits = params.get("Digits")
        value = digits.get(COLLECTION) if isinstance(digits, Mapping) else digits
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_DIGITS_LENGTH or not _KEYS.fullmatch(value):
        return INVALID_ENTRY
    return value.partition("#")[0]


def custom_vars(params: Mapping[str, Any]) -> dict[str, str]:
    """`Custom-Application-Vars[name]=value` (or the JSON object): what a quickcall carried."""
    found: dict[str, str] = {}
    nested = params.get("Custom-Application-Vars")
    if isinstance(nested, Mapping):
        found.update({str(k): str(v) for k, v in nested.items()})
    prefix = "Custom-Application-Vars["
    for key, value in params.items():
        if key.startswith(prefix) and key.endswith("]") and isinstance(value, str):
            found[key[len(prefix):-1]] = value
    return found


# -- callflow modules -------------------------------------------------------------------------

Module = dict[str, Any]


def play(url: str, terminators: Iterable[str] = ()) -> Module:
    return {"module": "play", "data": {"id": url, "terminators": list(terminators)}}


def play_interruptible(url: str) -> Module:
    """A question's prompt: any key cuts it short and counts as the entry's first key."""
    return {"module": "play", "data": {"id": url}}


def collect_dtmf(max_digits: int, timeout_ms: int) -> Module:
    """Up to `max_digits` keys, `#` ending early; `timeout_ms` for the first key and between keys,
    as Asterisk's GET DATA has it (Kazoo's own default between keys is 2 s, too short for a
    caller reading a ten-digit key number off a card)."""
    return {"module": "collect_dtmf", "data": {
        "max_digits": max_digits, "timeout": timeout_ms, "interdigit_timeout": timeout_ms, "terminator": "#",
        "collection_name": COLLECTION,
    }}


def pivot(voice_url: str) -> Module:
    return {"module": "pivot", "data": {"voice_url": voice_url, "req_format": "kazoo", "method": "get"}}


def hangup() -> Module:
    return {"module": "hangup", "data": {}}


def set_variables(variables: Mapping[str, str]) -> Module:
    """Custom application variables on the channel and on any leg bridged to it later (the agent's)."""
    return {"module": "set_variables", "data": {"custom_application_vars": dict(variables), "export": True}}


def transfer(callflow_id: str) -> Module:
    return {"module": "callflow", "data": {"id": callflow_id}}


def callflow(modules: list[Module]) -> Module:
    """The modules as one callflow: each the `_` child of the one before."""
    if not modules:
        raise ValueError("a callflow has at least one module")
    flow: Module = {**modules[-1], "children": {}}
    for module in reversed(modules[:-1]):
        flow = {**module, "children": {"_": flow}}
    return flow
