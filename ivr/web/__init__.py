"""HTTP around the service: health, metrics, media, the outbound jobs API and its OpenAPI document."""

from ivr.web._app import create_app
from ivr.web._metrics import Metrics
from ivr.web._openapi import openapi_document

__all__ = ["Metrics", "create_app", "openapi_document"]
