"""HTTP around the service: health, metrics, media, the outbound jobs API and its OpenAPI document,
Kimoby's webhooks."""

from ivr.web._app import create_app
from ivr.web._kimoby import WEBHOOK_PATH, kimoby_routes
from ivr.web._metrics import Metrics
from ivr.web._openapi import openapi_document

__all__ = ["WEBHOOK_PATH", "Metrics", "create_app", "kimoby_routes", "openapi_document"]
