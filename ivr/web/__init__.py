"""HTTP around the service: health, metrics, media (and later webhooks, the outbound API)."""

from ivr.web._app import create_app
from ivr.web._metrics import Metrics

__all__ = ["Metrics", "create_app"]
