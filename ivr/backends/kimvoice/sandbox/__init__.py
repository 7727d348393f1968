"""A KimVoice stand-in that speaks the same wire: real JWTs, seeded keys, fault knobs.

Embedded (`SandboxServer` in the service's own event loop, what `IVR_KIMVOICE_URL` unset gives),
on its own (`ivr sandbox`), or as the `kimvoice` service of `docker-compose.yml`.
"""

from ivr.backends.kimvoice.sandbox._app import create_app
from ivr.backends.kimvoice.sandbox._data import SEED_BOXES, SEED_KEYS, UNKNOWN_KEY, SeedBox, SeedKey, seed_key_lines
from ivr.backends.kimvoice.sandbox._server import SandboxServer
from ivr.backends.kimvoice.sandbox._service import Knobs, Sandbox, cbs_code_for, update_code_for

__all__ = [
    "SEED_BOXES",
    "SEED_KEYS",
    "UNKNOWN_KEY",
    "Knobs",
    "Sandbox",
    "SandboxServer",
    "SeedBox",
    "SeedKey",
    "cbs_code_for",
    "create_app",
    "seed_key_lines",
    "update_code_for",
]
