"""No log line and no record of a full run holds a PIN, a shackle code, a whole code or the ARI password."""

from __future__ import annotations

import io
import json
import logging

import structlog
from support.line import MakeLine, today

from ivr.kimvoice.sandbox import cbs_code_for, update_code_for
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
            records = [update.record, wrong.record]
    finally:
        root.handlers[:], root.level = saved
        structlog.reset_defaults()

    codes = [update_code_for(123456, 5001, 5001, 1, today()), cbs_code_for(90210, 123456, 5001, today())]
    assert update.heard.said_digits == [codes[0], codes[0], codes[1]]  # the caller did hear them

    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    if line.transport == "ari":
        assert any(e["event"] == "ari.connected" for e in events)
    assert any(e["event"] == "call.record" for e in events)
    logged = "\n".join(json.dumps({k: v for k, v in e.items() if k != "timestamp"}) for e in events)
    stored = "\n".join(r.model_dump_json() for r in records)
    for secret in (PIN, SHACKLE, "7391", *codes, PASSWORD):
        assert secret not in logged, f"{secret} in the log"
        assert secret not in stored, f"{secret} in a record"
    assert update.record.codes == ["*****" + codes[0][-2:], "****" + codes[1][-2:]]
