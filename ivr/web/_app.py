"""The service's HTTP endpoints: `/healthz` for load balancers, `/metrics` for Prometheus."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ivr.errors import KimVoiceError
from ivr.kimvoice import KimVoice
from ivr.tts import media_routes
from ivr.web._metrics import Metrics


def create_app(
    kimvoice: KimVoice, metrics: Metrics, active_calls: Callable[[], int], *, health_timeout: float = 2.0,
    tts_dir: Path | None = None, sounds_dir: Path | None = None,
) -> Starlette:
    """`tts_dir` and `sounds_dir` serve `/media/tts/<hash>.wav` and `/media/sounds/<lang>/keybox/<id>.wav`."""

    async def healthz(_: Request) -> Response:
        started = time.perf_counter()
        body: dict[str, object] = {"active_calls": active_calls()}
        try:
            health = await kimvoice.health_check(timeout=health_timeout)
        except KimVoiceError as exc:
            body |= {"status": "degraded", "kimvoice": {"reachable": False, "error": str(exc)}}
            return JSONResponse(body, status_code=503)
        ms = round((time.perf_counter() - started) * 1000, 1)
        body |= {"status": "ok", "kimvoice": {"reachable": True, "mode": health.operational_mode.value, "ms": ms}}
        return JSONResponse(body)

    async def metrics_text(_: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/healthz", healthz), Route("/metrics", metrics_text),
                             *media_routes(tts_dir, sounds_dir)])
