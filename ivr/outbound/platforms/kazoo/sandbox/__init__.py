"""A Kazoo stand-in that speaks the crossbar subset the line uses, with crossbar's envelopes, auth
and fault knobs: for tests, the demo and `ivr kazoo-sandbox`.

One account (`SANDBOX_ACCOUNT_ID`, named `SANDBOX_ACCOUNT_NAME`) with an admin user
(`SANDBOX_USERNAME`/`SANDBOX_PASSWORD`, or `SANDBOX_API_KEY`) and an agent (`AGENT_USER_ID`)
owning one SIP device (`AGENT_DEVICE_ID`). Quickcall legs end by the number dialled: `5550101`
busy, `5550102` no answer, `5550104` failed, any other answered (see `_state`'s docstring).
`KazooSandbox.on_callflow_call` is where a Pivot driver is told that a callflow's number was
reached.
"""

from ivr.outbound.platforms.kazoo.sandbox._app import create_app
from ivr.outbound.platforms.kazoo.sandbox._server import KazooSandboxServer
from ivr.outbound.platforms.kazoo.sandbox._state import (
    ADMIN_USER_ID,
    AGENT_DEVICE_ID,
    AGENT_SIP_USERNAME,
    AGENT_USER_ID,
    BUSY_NUMBER,
    FAILED_NUMBER,
    MAX_RANGE,
    NO_ANSWER_NUMBER,
    SANDBOX_ACCOUNT_ID,
    SANDBOX_ACCOUNT_NAME,
    SANDBOX_API_KEY,
    SANDBOX_PASSWORD,
    SANDBOX_REALM,
    SANDBOX_USERNAME,
    CallflowCall,
    KazooKnobs,
    KazooSandbox,
    Refused,
    outcome_of,
)

__all__ = [
    "ADMIN_USER_ID",
    "AGENT_DEVICE_ID",
    "AGENT_SIP_USERNAME",
    "AGENT_USER_ID",
    "BUSY_NUMBER",
    "FAILED_NUMBER",
    "MAX_RANGE",
    "NO_ANSWER_NUMBER",
    "SANDBOX_ACCOUNT_ID",
    "SANDBOX_ACCOUNT_NAME",
    "SANDBOX_API_KEY",
    "SANDBOX_PASSWORD",
    "SANDBOX_REALM",
    "SANDBOX_USERNAME",
    "CallflowCall",
    "KazooKnobs",
    "KazooSandbox",
    "KazooSandboxServer",
    "Refused",
    "create_app",
    "outcome_of",
]
