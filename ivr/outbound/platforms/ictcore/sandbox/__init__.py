"""An ICTCore stand-in that speaks the documented subset of its API, with ICTCore's quirks and
fault knobs: for tests, the demo and `ivr ictcore-sandbox`.

Calls end by the number dialled: `5550101` busy, `5550102` no answer, `5550104` failed
("invalid number"), any other completed, each after `call_seconds` of `processing`.
"""

from ivr.outbound.platforms.ictcore.sandbox._app import create_app
from ivr.outbound.platforms.ictcore.sandbox._server import IctCoreSandboxServer, serve_ictcore_sandbox
from ivr.outbound.platforms.ictcore.sandbox._state import (
    BUSY_NUMBER,
    FAILED_NUMBER,
    NO_ANSWER_NUMBER,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
    IctCoreKnobs,
    IctCoreSandbox,
)
from ivr.sandbox_kit import Refused

__all__ = [
    "BUSY_NUMBER",
    "FAILED_NUMBER",
    "NO_ANSWER_NUMBER",
    "SANDBOX_PASSWORD",
    "SANDBOX_USERNAME",
    "IctCoreKnobs",
    "IctCoreSandbox",
    "IctCoreSandboxServer",
    "Refused",
    "create_app",
    "serve_ictcore_sandbox",
]
