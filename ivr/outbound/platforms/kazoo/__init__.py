"""Kazoo (2600Hz) as an outbound platform: `KazooPlatform` (bridge and notice by quickcall,
outcomes from CDRs), its crossbar client here; the sandbox that stands in
for Kazoo in tests and demos is `ivr.outbound.platforms.kazoo.sandbox`.

`KazooClient` speaks the crossbar subset the line uses: `user_auth`/`api_auth` with one renewal
on a 401, quickcalls carrying the job id as a custom application variable, `cellphone` devices,
pivot callflows, CDRs found by that variable, and the channels in progress.
`provision_pivot` and `pivot_callflows` make and list the callflows that pivot to the service.
"""

from ivr.outbound.platforms.kazoo._client import (
    GREGORIAN_OFFSET,
    JOB_VARIABLE,
    MAX_CDR_RANGE,
    Callflow,
    CdrRow,
    Channel,
    KazooClient,
    Quickcall,
    gregorian,
    pivot_flow,
)
from ivr.outbound.platforms.kazoo._platform import (
    FOLLOW_LIMIT,
    KazooPlatform,
    bridge_outcome,
    caller_id_parts,
    leg_end,
)
from ivr.outbound.platforms.kazoo._provision import (
    PivotCallflow,
    Provisioned,
    pivot_callflows,
    provision_pivot,
    same_number,
)

__all__ = [
    "FOLLOW_LIMIT",
    "GREGORIAN_OFFSET",
    "JOB_VARIABLE",
    "MAX_CDR_RANGE",
    "Callflow",
    "CdrRow",
    "Channel",
    "KazooClient",
    "KazooPlatform",
    "PivotCallflow",
    "Provisioned",
    "Quickcall",
    "bridge_outcome",
    "caller_id_parts",
    "gregorian",
    "leg_end",
    "pivot_callflows",
    "pivot_flow",
    "provision_pivot",
    "same_number",
]
