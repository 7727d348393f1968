"""The service's HTTP endpoints: `/healthz` for load balancers, `/metrics` for Prometheus, `/media`,
and the outbound jobs API (`/v1/outbound/jobs`, `/v1/openapi.json`) when it is on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ivr.backends.kimvoice import KimVoice
from ivr.errors import KimVoiceError
from ivr.logging import get_logger
from ivr.netallow import Network
from ivr.outbound._jobs import Outbound
from ivr.tts import media_routes
from ivr.web._metrics import Metrics
from ivr.web._outbound import outbound_routes

log = get_logger("ivr.web")

HEALTH_CACHE_SECONDS = 10.0
"""How long a health check's outcome answers probes: a probe must not cost a KimVoice request."""


class _Health:
    """The last outcome of checking KimVoice and the store, kept `ttl` seconds.

    Probes arriving while a check runs wait for that one check. Backend error text is never
    shown (it may name hosts or carry what a peer said): only the error's class.
    """

    def __init__(
        self, kimvoice: KimVoice, store_healthy: Callable[[], Awaitable[bool]], timeout: float, ttl: float,
    ) -> None:
        self._kimvoice = kimvoice
        self._store_healthy = store_healthy
        self._timeout = timeout
        self._ttl = ttl
        self._last: tuple[float, dict[str, Any]] | None = None
        self._running: asyncio.Task[dict[str, Any]] | None = None

    async def get(self) -> dict[str, Any]:
        last = self._last
        if last is not None and time.monotonic() - last[0] < self._ttl:
            return last[1]
        if self._running is None:
            self._running = asyncio.get_running_loop().create_task(self._check())
        return await asyncio.shield(self._running)  # a probe that hangs up does not cancel the others'

    async def _check(self) -> dict[str, Any]:
        try:
            kimvoice, store = await asyncio.gather(self._check_kimvoice(), self._check_store())
            result = {"kimvoice": kimvoice, "store": "ok" if store else "failing"}
            self._last = (time.monotonic(), result)
            return result
        finally:
            self._running = None

    async def _check_kimvoice(self) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            health = await self._kimvoice.health_check(timeout=self._timeout)
        except KimVoiceError as exc:
            return {"reachable": False, "error": type(exc).__name__}
        ms = round((time.perf_counter() - started) * 1000, 1)
        return {"reachable": True, "mode": health.operational_mode.value, "ms": ms}

    async def _check_store(self) -> bool:
        try:
            async with asyncio.timeout(self._timeout):
                return await self._store_healthy()
        except Exception as exc:  # noqa: BLE001 - a store that cannot say is not healthy
            log.warning("health.store_check_failed", error=type(exc).__name__)
            return False


def create_app(
    kimvoice: KimVoice, metrics: Metrics, active_calls: Callable[[], int], *,
    store_healthy: Callable[[], Awaitable[bool]], media_allow: Sequence[Network], health_timeout: float = 2.0,
    tts_dir: Path | None = None, sounds_dir: Path | None = None, sandbox: bool = False,
    outbound: Outbound | None = None, api_tokens: Sequence[SecretStr] = (),
    outbound_status: Callable[[], dict[str, object]] | None = None, extra_routes: Sequence[BaseRoute] = (),
    breaker: Callable[[], str] | None = None,
) -> Starlette:
    """`tts_dir` and `sounds_dir` serve `/media/tts/<hash>.wav` and `/media/sounds/<lang>/keybox/<id>.wav`
    to the peers in `media_allow`. `sandbox`: KimVoice is the embedded sandbox, which `/healthz`
    says (``"kimvoice": {"backend": "sandbox", …}``): a probe then sees that callers get test data.
    `outbound_status`: the outbound runner's view, shown in `/healthz` under `outbound`.
    `extra_routes`: a transport's own (Kazoo's pivot requests), which guard themselves.
    `breaker`: the state of KimVoice's circuit breaker, shown live under `kimvoice` (an open
    breaker also makes the check itself fail fast: `degraded`).

    `outbound` and `api_tokens` mount the outbound jobs API; without `outbound` (the API off) or
    without a token its paths answer 404 like any unknown path."""
    health = _Health(kimvoice, store_healthy, health_timeout, HEALTH_CACHE_SECONDS)

    async def healthz(_: Request) -> Response:
        checked = await health.get()
        ok = checked["kimvoice"]["reachable"] and checked["store"] == "ok"
        body = {"status": "ok" if ok else "degraded", "active_calls": active_calls(), **checked}
        if breaker is not None:
            body["kimvoice"] = {**checked["kimvoice"], "breaker": breaker()}
        if outbound_status is not None:
            body["outbound"] = outbound_status()  # shown, not judged: jobs wait for a platform that is down
        if sandbox:
            body["kimvoice"] = {"backend": "sandbox", **body["kimvoice"]}
        return JSONResponse(body, status_code=200 if ok else 503)

    async def metrics_text(_: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/healthz", healthz), Route("/metrics", metrics_text),
                             *media_routes(tts_dir, sounds_dir, media_allow), *extra_routes,
                             *outbound_routes(outbound, api_tokens)])
