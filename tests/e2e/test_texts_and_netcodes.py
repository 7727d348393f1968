"""The code by text message (Kimoby) and lock NetCodes (Codelocks) in the keybox route, through
the real service with both sandboxes on loopback: what the caller heard, the record, and what
each backend was asked. Without them configured the menus stay as they were (the other e2e
tests, unchanged, show it)."""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from support.line import MakeLine, running_line, today

from ivr.backends.codelocks import load_locks, netcode_start
from ivr.backends.codelocks.sandbox import (
    SAMPLE_LOCKS_FILE,
    CodelocksKnobs,
    CodelocksSandbox,
    CodelocksSandboxServer,
    sandbox_netcode,
)
from ivr.backends.codelocks.sandbox import SANDBOX_API_KEY as CODELOCKS_KEY
from ivr.backends.kimoby import sign
from ivr.backends.kimoby.sandbox import (
    SANDBOX_API_KEY,
    SANDBOX_API_SECRET,
    KimobyKnobs,
    KimobySandbox,
    KimobySandboxServer,
)
from ivr.backends.kimvoice.sandbox import update_code_for
from ivr.logging import mask_code
from ivr.records import Outcome

START = ["welcome", "enter-key-number", "enter-pin"]
LOCKS = load_locks(SAMPLE_LOCKS_FILE)


@pytest.fixture
async def kimoby() -> AsyncIterator[KimobySandboxServer]:
    sandbox = KimobySandbox(KimobyKnobs(retry_schedule=[0.0, 0.05, 0.1]))
    async with KimobySandboxServer(sandbox) as server:
        yield server
    await server.stop()


@pytest.fixture
async def codelocks() -> AsyncIterator[CodelocksSandboxServer]:
    async with CodelocksSandboxServer(CodelocksSandbox(CodelocksKnobs())) as server:
        yield server
    await server.stop()


def texts_settings(kimoby: KimobySandboxServer) -> dict[str, Any]:
    return {"kimoby_url": kimoby.api_url, "kimoby_api_key": SANDBOX_API_KEY, "kimoby_api_secret": SANDBOX_API_SECRET}


def netcode_settings(codelocks: CodelocksSandboxServer, **more: Any) -> dict[str, Any]:
    return {"codelocks_url": codelocks.url, "codelocks_api_key": CODELOCKS_KEY,
            "codelocks_locks_file": SAMPLE_LOCKS_FILE, **more}


def netcodes_now(number: str) -> set[str]:
    """The sandbox's NetCode of the lock for this hour (and the next, should the call cross it)."""
    lock = LOCKS.find(number)
    assert lock is not None
    found = set()
    for at in (datetime.now(UTC), datetime.now(UTC).replace(minute=59, second=59)):
        start, _ = netcode_start(at, ZoneInfo(lock.timezone), lock.duration)
        found.add(sandbox_netcode(lock.id, lock.model, lock.identifier, start, lock.duration))
    return found


# -- the code by text message --------------------------------------------------------------

async def test_the_code_by_text_message(make_line: MakeLine, kimoby: KimobySandboxServer) -> None:
    async with make_line(**texts_settings(kimoby)) as line:
        call = await line.call("123456#2580#1" "3" "9")
    code = update_code_for(123456, 5001, 5001, 1, today())
    assert call.prompts == [*START, "choose-code-type", "your-update-code-is", "after-code-menu-sms", "sms-sent",
                            "after-code-menu", "goodbye"]
    assert call.heard.said_digits == [code]
    sent = list(kimoby.sandbox.messages.values())
    assert len(sent) == 1 and code in sent[0]["body"] and sent[0]["body"].startswith("Your update code is")
    assert call.record.outcome is Outcome.UPDATE_CODE_READ
    assert [t.id for t in call.record.texts] == [str(sent[0]["id"])]
    assert "SendText" in [b.method for b in call.record.backend]


@pytest.mark.parametrize(("why", "change"), [
    ("unsubscribed", lambda sandbox: sandbox.set_unsubscribed("123456", True)),
    ("no cell phone", lambda sandbox: sandbox.customers[next(iter(sandbox.customers))].update(cell_phone_number=None)),
    ("Kimoby fails", lambda sandbox: sandbox.knobs.__setattr__("fail_next", [500, 500, 500])),
])
async def test_no_text_can_go_the_caller_hears_why_and_the_menu_again(
        tmp_path: Path, kimoby: KimobySandboxServer, why: str, change: Any) -> None:
    change(kimoby.sandbox)
    async with running_line(tmp_path, **texts_settings(kimoby)) as line:
        call = await line.call("123456#2580#1" "3" "9")
    assert call.prompts[-4:] == ["after-code-menu-sms", "sms-unavailable", "after-code-menu-sms", "goodbye"], why
    assert kimoby.sandbox.messages == {}
    assert call.record.texts == [] and call.record.outcome is Outcome.UPDATE_CODE_READ


async def test_a_second_3_after_the_text_was_sent_sends_nothing_more(tmp_path: Path,
                                                                     kimoby: KimobySandboxServer) -> None:
    async with running_line(tmp_path, **texts_settings(kimoby)) as line:
        call = await line.call("123456#2580#1" "3" "3" "9")
    assert call.prompts[-6:] == ["after-code-menu-sms", "sms-sent", "after-code-menu", "invalid-entry",
                                 "after-code-menu", "goodbye"]
    assert len(kimoby.sandbox.messages) == 1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_delivery_statuses_reach_the_record_through_the_signed_webhooks(
        tmp_path: Path, kimoby: KimobySandboxServer) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/webhooks/kimoby"
    async with httpx.AsyncClient(base_url=kimoby.api_url, auth=(SANDBOX_API_KEY, SANDBOX_API_SECRET)) as api:
        created = await api.post("/webhooks", json={"url": url})
    key = created.json().get("authentication_key") or created.json().get("key_authentication")
    async with running_line(tmp_path, http_port=port, kimoby_webhook_url=url, kimoby_webhook_key=key,
                            **texts_settings(kimoby)) as line:
        call = await line.call("123456#2580#1" "3" "9")
        message_id = call.record.texts[0].id
        for _ in range(200):  # queued, sent, delivered: each a signed webhook the service handles
            record = await line.service.services.records.get(call.record.call_id)
            assert record is not None
            if record.texts[0].status == "delivered":
                break
            await asyncio.sleep(0.02)
        forged = b'{"event_name": "message_updated", "data": {"id": %s, "status": "failed"}}' % message_id.encode()
        async with httpx.AsyncClient(base_url=line.service.http.url) as http:
            wrong = await http.post("/webhooks/kimoby", content=forged,
                                    headers={"X-Kimoby-Signature": sign("not-the-key", url, forged)})
            huge = await http.post("/webhooks/kimoby", content=b"x" * (3 << 20))
        after = await line.service.services.records.get(call.record.call_id)
    assert record.texts[0].status == "delivered"
    assert (wrong.status_code, huge.status_code) == (401, 413)
    assert after is not None and after.texts[0].status == "delivered"


async def test_a_webhook_signed_over_the_url_exactly_as_registered_is_accepted(
        tmp_path: Path, kimoby: KimobySandboxServer) -> None:
    """Kimoby signs the URL as it was registered, byte for byte: the service checks that one, not
    a normalised one (host in lower case, no :443)."""
    registered = "https://IVR.example.com:443/webhooks/kimoby"  # a proxy in front forwards to the listener
    async with running_line(tmp_path, kimoby_webhook_url=registered, kimoby_webhook_key="the-webhook-key",
                            **texts_settings(kimoby)) as line:
        call = await line.call("123456#2580#1" "3" "9")
        message_id = call.record.texts[0].id
        event = b'{"event_name": "message_updated", "data": {"id": %s, "status": "delivered"}}' % message_id.encode()
        async with httpx.AsyncClient(base_url=line.service.http.url) as http:
            normalised = await http.post("/webhooks/kimoby", content=event, headers={
                "X-Kimoby-Signature": sign("the-webhook-key", "https://ivr.example.com/webhooks/kimoby", event)})
            accepted = await http.post("/webhooks/kimoby", content=event, headers={
                "X-Kimoby-Signature": sign("the-webhook-key", registered, event)})
        for _ in range(200):  # the event is handled after its 200, by the receiver's worker
            record = await line.service.services.records.get(call.record.call_id)
            assert record is not None
            if record.texts[0].status == "delivered":
                break
            await asyncio.sleep(0.02)
    assert (normalised.status_code, accepted.status_code) == (401, 200)
    assert record.texts[0].status == "delivered"


# -- lock NetCodes -------------------------------------------------------------------------

async def test_a_lock_netcode(make_line: MakeLine, codelocks: CodelocksSandboxServer) -> None:
    async with make_line(**netcode_settings(codelocks)) as line:
        call = await line.call("123456#2580#" "3" "4712#" "9")
    assert call.prompts == [*START, "choose-code-type-netcode", "enter-lock-number", "your-netcode-is",
                            "after-code-menu", "goodbye"]
    assert len(call.heard.said_digits) == 1 and call.heard.said_digits[0] in netcodes_now("4712")
    assert call.record.outcome is Outcome.NETCODE_READ
    assert call.record.codes == [mask_code(call.heard.said_digits[0])]
    assert sum(codelocks.sandbox.netcode_calls.values()) == 1


async def test_netcode_unknown_lock_then_known_and_kept_for_the_next_caller(
        tmp_path: Path, codelocks: CodelocksSandboxServer) -> None:
    async with running_line(tmp_path, **netcode_settings(codelocks)) as line:
        first = await line.call("123456#2580#" "3" "999#" "4711#" "9")
        second = await line.call("123456#2580#" "3" "4711#" "9")
    assert first.prompts[4:8] == ["enter-lock-number", "invalid-entry", "enter-lock-number", "your-netcode-is"]
    assert first.heard.said_digits == second.heard.said_digits
    assert sum(codelocks.sandbox.netcode_calls.values()) == 1  # the second caller heard the kept one


async def test_a_member_not_allowed_on_the_lock_hears_not_authorized(
        tmp_path: Path, codelocks: CodelocksSandboxServer) -> None:
    async with running_line(tmp_path, **netcode_settings(codelocks)) as line:
        call = await line.call("123456#2580#" "3" "4713#" "1" "9")  # 4713 is for member 8003 only
    assert call.prompts[4:8] == ["enter-lock-number", "not-authorized", "choose-code-type-netcode",
                                 "your-update-code-is"]
    assert call.record.outcome is Outcome.UPDATE_CODE_READ
    assert sum(codelocks.sandbox.netcode_calls.values()) == 0


@pytest.mark.parametrize(("why", "knobs", "budget"), [
    ("Codelocks' quota", {"netcode_remaining": 0}, 1000),
    ("Codelocks answers 502", {"fail_next": [502]}, 1000),
])
async def test_no_netcode_to_give_the_caller_hears_system_unavailable(
        tmp_path: Path, codelocks: CodelocksSandboxServer, why: str, knobs: dict[str, Any], budget: int) -> None:
    for name, value in knobs.items():
        setattr(codelocks.sandbox.knobs, name, value)
    async with running_line(tmp_path, operator="", **netcode_settings(codelocks, codelocks_monthly_budget=budget)) \
            as line:
        call = await line.call("123456#2580#" "3" "4712#")
    assert call.prompts[-2:] == ["system-unavailable", "goodbye"], why
    assert call.heard.said_digits == []
    assert call.record.outcome is Outcome.UNAVAILABLE


async def test_past_our_own_budget_codelocks_is_not_asked(tmp_path: Path, codelocks: CodelocksSandboxServer) -> None:
    async with running_line(tmp_path, operator="", **netcode_settings(codelocks, codelocks_monthly_budget=1)) \
            as line:
        first = await line.call("123456#2580#" "3" "4712#" "9")
        second = await line.call("123456#2580#" "3" "4714#")
    assert first.record.outcome is Outcome.NETCODE_READ
    assert second.prompts[-2:] == ["system-unavailable", "goodbye"]
    assert sum(codelocks.sandbox.netcode_calls.values()) == 1


async def test_both_offered_a_netcode_can_go_by_text_too(tmp_path: Path, kimoby: KimobySandboxServer,
                                                         codelocks: CodelocksSandboxServer) -> None:
    async with running_line(tmp_path, **texts_settings(kimoby), **netcode_settings(codelocks)) as line:
        call = await line.call("123456#2580#" "3" "4712#" "3" "9")
    netcode = call.heard.said_digits[0]
    body = next(iter(kimoby.sandbox.messages.values()))["body"]
    assert call.prompts[-4:] == ["after-code-menu-sms", "sms-sent", "after-code-menu", "goodbye"]
    assert body == f"Your NetCode is {netcode}."


async def test_no_code_text_or_secret_reaches_the_log(tmp_path: Path, kimoby: KimobySandboxServer,
                                                      codelocks: CodelocksSandboxServer, log_text: io.StringIO) -> None:
    async with running_line(tmp_path, **texts_settings(kimoby), **netcode_settings(codelocks)) as line:
        update = await line.call("123456#2580#1" "3" "9")
        netcode = await line.call("123456#2580#" "3" "4712#" "3" "9")
    logged = log_text.getvalue()
    codes = [*update.heard.said_digits, *netcode.heard.said_digits]
    assert len(kimoby.sandbox.messages) == 2 and all(len(code) >= 6 for code in codes)
    for secret in (*codes, SANDBOX_API_SECRET, CODELOCKS_KEY):
        assert secret not in logged
    for message in kimoby.sandbox.messages.values():
        assert message["body"] not in logged


async def test_both_sandboxes_embedded_by_name(tmp_path: Path) -> None:
    """`IVR_KIMOBY_URL=sandbox` and `IVR_CODELOCKS_URL=sandbox`: a newcomer's line offers both
    with nothing else running (the sample lock directory, the sandboxes' own credentials)."""
    async with running_line(tmp_path, kimoby_url="sandbox", codelocks_url="sandbox") as line:
        call = await line.call("123456#2580#" "3" "4711#" "3" "9")
    assert call.prompts == [*START, "choose-code-type-netcode", "enter-lock-number", "your-netcode-is",
                            "after-code-menu-sms", "sms-sent", "after-code-menu", "goodbye"]
    assert call.heard.said_digits[0] in netcodes_now("4711")
    assert call.record.outcome is Outcome.NETCODE_READ and len(call.record.texts) == 1
