"""A Codelocks Connect stand-in that speaks the guide's NetCode and durations calls behind
`x-api-key`, with monthly quotas and fault knobs: for tests, the demo and `ivr codelocks-sandbox`.

NetCodes are deterministic per lock, start and duration (`sandbox_netcode`). The locks it knows
(`SANDBOX_LOCKS`) are those of the sample lock directory `SAMPLE_LOCKS_FILE`.
"""

from pathlib import Path

from ivr.backends.codelocks.sandbox._app import create_app
from ivr.backends.codelocks.sandbox._server import CodelocksSandboxServer, serve_codelocks_sandbox
from ivr.backends.codelocks.sandbox._state import (
    DIGITS,
    QUOTA_MESSAGE,
    SANDBOX_API_KEY,
    SANDBOX_LOCKS,
    CodelocksKnobs,
    CodelocksSandbox,
    Refused,
    SandboxLock,
    sandbox_netcode,
)

SAMPLE_LOCKS_FILE = Path(__file__).with_name("locks.toml")
"""A lock directory whose locks the sandbox knows."""

__all__ = [
    "DIGITS",
    "QUOTA_MESSAGE",
    "SAMPLE_LOCKS_FILE",
    "SANDBOX_API_KEY",
    "SANDBOX_LOCKS",
    "CodelocksKnobs",
    "CodelocksSandbox",
    "CodelocksSandboxServer",
    "Refused",
    "SandboxLock",
    "create_app",
    "sandbox_netcode",
    "serve_codelocks_sandbox",
]
