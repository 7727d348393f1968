"""HTTP around the service: health, metrics, media (and later webhooks, the outbound API)."""

from ivr.web._app import create_app
from ivr.web._metrics import Metrics
from ivr.web._serve import EmbeddedHttpServer

__all__ = ["EmbeddedHttpServer", "Metrics", "create_app"]
