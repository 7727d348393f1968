"""No log line and no record of a full run holds a PIN, a shackle code, a whole code or the ARI password."""

from __future__ import annotations

import io
import json
import logging
import re
from typing import Any

import structlog
from support.line import MakeLine, today

from ivr.backends.kimvoice.sandbox import cbs_code_for, update_code_for
from ivr.logging import configure_logging

PIN, SHACKLE, PASSWORD = "2580", "4321", "ari-Pa55word"


async def test_full_calls_leak_nothing(make_line: MakeLine) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("json", "debug", stream=stream)
    try:
        async with make_line(log_level="debug", ari_password=PASSWORD) as line:
            update = await line.call(f"123456#{PIN}#1" "1" "2" "2" f"90210#{SHACKLE}" "9")
            wrong = await line.call("123456#7391#" f"123456#{PIN}#0")
            no_hash = await line.call(f"123456{PIN}#" "1111#" "0")  # the PIN typed into the key number
            records = [update.record, wrong.record, no_hash.record]
    finally:
        root.handlers[:], root.level = saved
        structlog.reset_defaults()

    codes = [update_code_for(123456, 5001, 5001, 1, today()), cbs_code_for(90210, 123456, 5001, today())]
    assert update.heard.said_digits == [codes[0], codes[0], codes[1]]  # the caller did hear them

    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    if line.transport == "ari":
        assert any(e["event"] == "ari.connected" for e in events)
    assert any(e["event"] == "call.record" for e in events)
    # Call ids count up over a test session, and times are floats: neither can hold a secret,
    # and either may spell "2580" by chance, so both are left out of the search.
    call_ids = {r.call_id for r in records}
    logged = "\n".join(json.dumps(_searchable(e, call_ids)) for e in events)
    stored = "\n".join(json.dumps(_searchable(r.model_dump(mode="json"), call_ids)) for r in records)
    assert no_hash.heard.variables["IVR_KEY_NUMBER"] == "********80"
    for secret in (PIN, SHACKLE, "7391", f"123456{PIN}", *codes, PASSWORD):
        assert secret not in logged, f"{secret} in the log"
        assert secret not in stored, f"{secret} in a record"
    assert update.record.codes == ["*****" + codes[0][-2:], "****" + codes[1][-2:]]


def _searchable(value: Any, call_ids: set[str]) -> Any:
    """`value` without what a secret never is, and what may spell "2580" by chance: timestamps,
    decimal numbers, call ids, and what the machine picks at random (ports, process ids in a
    runner's `owner`, UUIDs and hex ids with a letter in them: a code has only digits)."""
    if isinstance(value, dict):
        return {k: "<random>" if k in _RANDOM_KEYS else _searchable(v, call_ids)
                for k, v in value.items() if k != "timestamp"}
    if isinstance(value, list):
        return [_searchable(v, call_ids) for v in value]
    if isinstance(value, float):
        return None
    if isinstance(value, str):
        for call_id in call_ids:
            value = value.replace(call_id, "<call>")
        value = _HEX_IDS.sub("<id>", value)
        value = _DECIMALS.sub("<n>", value)  # times inside text (a debug line quoting a record), addresses
        return _PORTS.sub(":<port>", value)
    return value


_RANDOM_KEYS = frozenset({"port", "owner"})
_HEX_IDS = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"  # UUIDs
                      r"|\b(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b")
_DECIMALS = re.compile(r"\d+\.\d+")
_PORTS = re.compile(r"(?<=<n>):\d+")
