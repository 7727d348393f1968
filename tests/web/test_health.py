"""`/healthz` over real HTTP against the real sandbox: cached, single-flight, no backend text, the store's state."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx

from ivr.backends.kimvoice import KimVoiceClient
from ivr.backends.kimvoice.sandbox import SandboxServer
from ivr.embedded_http import EmbeddedHttpServer
from ivr.netallow import parse_networks
from ivr.settings import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
from ivr.web import Metrics, create_app


async def store_ok() -> bool:
    return True


@asynccontextmanager
async def probing(
    kimvoice_url: str, store_healthy: Callable[[], Awaitable[bool]] = store_ok, *, embedded: bool = False,
) -> AsyncIterator[httpx.AsyncClient]:
    """The service's HTTP app over a KimVoice client for `kimvoice_url`, and an HTTP client for it."""
    async with KimVoiceClient(kimvoice_url, SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, timeout=2,
                              backoff=0.01) as kimvoice:
        app = create_app(kimvoice, Metrics(routes=()), lambda: 3, store_healthy=store_healthy,
                         media_allow=parse_networks("127.0.0.0/8"), health_timeout=1, sandbox=embedded)
        async with EmbeddedHttpServer(app) as server, httpx.AsyncClient(base_url=server.url) as http:
            yield http


async def test_probes_share_one_health_check(sandbox: SandboxServer) -> None:
    async with probing(sandbox.url) as http:
        answers = await asyncio.gather(*(http.get("/healthz") for _ in range(20)))
        answers += [await http.get("/healthz") for _ in range(5)]
    assert {a.status_code for a in answers} == {200}
    assert answers[-1].json() == {"status": "ok", "active_calls": 3, "store": "ok",
                                  "kimvoice": {**answers[-1].json()["kimvoice"], "reachable": True, "mode": "Normal"}}
    assert sandbox.sandbox.requests["HealthCheck"] == 1, "25 probes, one KimVoice request"


async def test_the_embedded_sandbox_is_named_and_the_body_keeps_its_fields(sandbox: SandboxServer) -> None:
    async with probing(sandbox.url, embedded=True) as http:
        answer = await http.get("/healthz")
    assert answer.status_code == 200
    body = answer.json()
    assert body == {"status": "ok", "active_calls": 3, "store": "ok",
                    "kimvoice": {**body["kimvoice"], "backend": "sandbox", "reachable": True, "mode": "Normal"}}
    assert "ms" in body["kimvoice"]


async def test_an_unreachable_kimvoice_is_named_by_error_class_only() -> None:
    async with probing("http://127.0.0.1:9") as http:  # nothing listens on the discard port
        answer = await http.get("/healthz")
    assert answer.status_code == 503
    assert answer.json() == {"status": "degraded", "active_calls": 3, "store": "ok",
                             "kimvoice": {"reachable": False, "error": "UnavailableError"}}
    assert "127.0.0.1" not in answer.text and "connect" not in answer.text.lower()


async def test_a_failing_store_makes_the_service_degraded(sandbox: SandboxServer) -> None:
    async def failing() -> bool:
        return False

    async def broken() -> bool:
        raise OSError("disk I/O error at /var/lib/keybox-ivr/calls.db")

    for store in (failing, broken):
        async with probing(sandbox.url, store) as http:
            answer = await http.get("/healthz")
        assert answer.status_code == 503
        assert answer.json()["status"] == "degraded" and answer.json()["store"] == "failing"
        assert answer.json()["kimvoice"]["reachable"] is True
        assert "/var/lib" not in answer.text
