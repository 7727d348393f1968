"""No PIN, shackle code, secret or token reaches the log; codes appear masked."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from ivr.backends.kimvoice import KimVoiceClient
from ivr.backends.kimvoice.sandbox import SandboxServer
from ivr.logging import bind_call, configure_logging, get_logger, mask_code
from ivr.settings import SANDBOX_CLIENT_SECRET

JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjE3OTk5OTk5OTl9.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    """The real configuration, writing JSON lines to a buffer."""
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("json", "debug", stream=stream)
    yield stream
    root.handlers[:], root.level = saved
    structlog.reset_defaults()


def events(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def searchable(stream: io.StringIO) -> str:
    """Every event without its timestamp, whose digits could match a PIN by chance."""
    return "\n".join(json.dumps({k: v for k, v in e.items() if k != "timestamp"}) for e in events(stream))


def test_secrets_in_fields_are_removed(output: io.StringIO) -> None:
    get_logger("t").info(
        "caller entered", pin="2580", shackle_code="4321", client_secret="hunter22", token=JWT,
        nested={"clientSecret": "hunter22", "list": [{"shackleCode": "4321"}]},
    )
    text = searchable(output)
    for secret in ("2580", "4321", "hunter22", JWT):
        assert secret not in text
    event = events(output)[0]
    assert event["pin"] == event["shackle_code"] == event["token"] == "[REDACTED]"


def test_secrets_inside_text_are_removed(output: io.StringIO) -> None:
    log = get_logger("t")
    log.info("GET /api/V1/Key/GetKeyHolders?keyNumber=123456&pin=2580")
    log.info("request", url="/KeyBox/GetCbsCode?boxNumber=90210&shackleCode=4321&keyNumber=123456")
    log.info("header", line=f"Authorization: Bearer {JWT}")
    log.info("body", body='{"clientId": "ivr", "clientSecret": "hunter22", "pin": "2580"}')
    log.info(f"token is {JWT}")
    text = searchable(output)
    for secret in ("2580", "4321", "hunter22", JWT, "eyJ"):
        assert secret not in text
    assert "keyNumber=123456" in text  # what is not secret stays readable


def test_codes_are_masked_to_their_last_two_digits(output: io.StringIO) -> None:
    log = get_logger("t")
    log.info("code read", update_code="4719283", cbs_code=829140)
    log.info("answer", body='{"updateCode": "4719283"}')
    text = searchable(output)
    assert "4719283" not in text and "829140" not in text
    assert events(output)[0]["update_code"] == "*****83"
    assert events(output)[0]["cbs_code"] == "****40"
    assert mask_code("12") == "**" and mask_code("7") == "*"


def test_library_logs_pass_the_same_redaction(output: io.StringIO) -> None:
    logging.getLogger("uvicorn.something").warning("GET /api?pin=2580 Authorization: Bearer %s", JWT)
    text = searchable(output)
    assert "2580" not in text and JWT not in text
    assert events(output)[0]["level"] == "warning"


def test_exceptions_are_redacted_too(output: io.StringIO) -> None:
    try:
        raise ValueError("bad pin=2580")
    except ValueError:
        get_logger("t").exception("failed")
    assert "2580" not in searchable(output)
    assert "ValueError" in events(output)[0]["exception"]


def test_every_line_of_a_call_carries_its_call_id(output: io.StringIO) -> None:
    log = get_logger("t")
    with bind_call("1700000000.42", route="keybox"):
        log.info("step", step="enter-pin")
        logging.getLogger("other").warning("library line")
    log.info("after the call")
    first, second, third = events(output)
    assert first["call_id"] == second["call_id"] == "1700000000.42"
    assert "call_id" not in third


async def test_a_client_session_leaks_nothing(output: io.StringIO) -> None:
    async with SandboxServer() as server, KimVoiceClient(server.url, "ivr-sandbox", SANDBOX_CLIENT_SECRET) as client:
        await client.get_key_holders(123456, "2580")
        await client.validate_key_holder(123456, 5001, 1, "Cbs")
        cbs = await client.get_cbs_code(90210, "4321", 123456, 5001)
        token = client.tokens.current
    text = searchable(output)
    assert token is not None
    for secret in ("2580", "4321", SANDBOX_CLIENT_SECRET, token.value, cbs.cbs_code):
        assert secret not in text
    logged = [e for e in events(output) if e["event"] == "kimvoice.request"]
    assert [e["method"] for e in logged] == ["LogOn", "GetKeyHolders", "ValidateKeyHolder", "GetCbsCode"]
    assert all(isinstance(e["ms"], float) and e["status"] == 200 for e in logged)


def test_a_peer_driven_warning_is_logged_once_then_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    """A flood of refused connections or made-up routes: one line a period, with the count since."""
    from ivr.logging import ThrottledWarning

    lines: list[tuple[str, dict[str, object]]] = []

    class Recorder:
        def warning(self, event: str, **fields: object) -> None:
            lines.append((event, fields))

    now = [1000.0]
    monkeypatch.setattr("ivr.logging.time.monotonic", lambda: now[0])
    warning = ThrottledWarning(Recorder(), "agi.peer_refused", every=1.0)
    for _ in range(5000):
        warning.note(peer="203.0.113.9:4000")
    now[0] += 1.0
    warning.note(peer="203.0.113.9:4001")
    assert lines == [("agi.peer_refused", {"count": 1, "peer": "203.0.113.9:4000"}),
                     ("agi.peer_refused", {"count": 5000, "peer": "203.0.113.9:4001"})]
