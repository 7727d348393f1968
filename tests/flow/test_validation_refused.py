"""A validation KimVoice answers without granting it (200, `isAuthorized` false): the keybox route
with the real KimVoice client over loopback fails closed, as for 2001-2003. What the caller
hears, the record, and what KimVoice was asked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from support.memory_call import MemoryCall

from ivr.backends.kimvoice import KimVoiceClient
from ivr.backends.kimvoice.sandbox import Knobs, Sandbox, create_app
from ivr.catalog import PromptCatalog, default_prompts_dir
from ivr.embedded_http import EmbeddedHttpServer
from ivr.flow.guard import SignInGuard
from ivr.flow.runner import run_call
from ivr.flow.services import Services, guard_limits
from ivr.install_key import install_key
from ivr.records import Outcome
from ivr.settings import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, load_settings
from ivr.store import SqliteStore
from ivr.tts import TtsCache

CATALOG = PromptCatalog.load(default_prompts_dir())


def not_granting(sandbox_app: ASGIApp) -> ASGIApp:
    """The sandbox, but ValidateKeyHolder answers 200 with `isAuthorized` false."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/Key/ValidateKeyHolder"):
            query = Request(scope).query_params
            refused = {"isAuthorized": False, "keyNumber": int(query["keyNumber"]),
                       "memberNumber": int(query["memberNumber"]), "podNumber": int(query["podNumber"]),
                       "codeType": query["codeType"]}
            await JSONResponse(refused)(scope, receive, send)
            return
        await sandbox_app(scope, receive, send)

    return app


@pytest.fixture
async def sandbox() -> AsyncIterator[tuple[Sandbox, str]]:
    kimvoice = Sandbox(Knobs())
    async with EmbeddedHttpServer(not_granting(create_app(kimvoice))) as server:
        yield kimvoice, server.url


async def test_is_authorized_false_is_not_authorized_and_no_code_is_asked(
    tmp_path: Path, sandbox: tuple[Sandbox, str],
) -> None:
    kimvoice, url = sandbox
    settings = load_settings(data_dir=tmp_path, operator="Queue(keybox-agents)")
    store = await SqliteStore.open(tmp_path / "calls.db")
    try:
        guard = SignInGuard(store, install_key(tmp_path), guard_limits(settings))
        await guard.open()
        tts = TtsCache(tmp_path / "tts", None, key=b"memory-call-tests")
        async with KimVoiceClient(url, SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, timeout=3.0) as client:
            services = Services(kimvoice=client, store=store, guard=guard, tts=tts, settings=settings)
            call = MemoryCall("123456#2580#" "1", tts_text=tts.text_of, catalog=CATALOG)
            record = await run_call(call, services)
    finally:
        await store.close()

    assert call.heard == ["answer", "prompt:welcome", "prompt:enter-key-number", "pressed:123456#", "prompt:enter-pin",
                          "pressed:2580#", "prompt:choose-code-type", "pressed:1", "prompt:not-authorized",
                          "prompt:press-zero-for-operator", "silence", "prompt:goodbye", "hangup:service"]
    assert (record.outcome, record.detail) == (Outcome.NOT_AUTHORIZED, "isAuthorized false")
    assert [asked.method for asked in record.backend] == ["HealthCheck", "GetKeyHolders", "ValidateKeyHolder"]
    assert kimvoice.requests["GetUpdateCode"] == 0 and kimvoice.requests["GetKeyHolders"] == 1
