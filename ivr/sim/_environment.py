"""The AGI environment a simulated call starts with, line for line as res_agi.c writes it.

For FastAGI `launch_netscript` first sends `agi_network: yes` and `agi_network_script: <script>`
(everything after the host in `agi://host:port/<script>`, query included); `setup_env` then
writes `agi_request` first and the other keys in a fixed order, and for classic AGI
`agi_arg_1`… with the program's arguments. Each call gets its own `agi_uniqueid` (Asterisk's
`<epoch>.<sequence>`) and channel name, so call records never collide.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Mapping, Sequence
from urllib.parse import urlencode

__all__ = ["agi_environment"]

ASTERISK_VERSION = "20.10.0"

# Asterisk numbers its channels with one process-wide counter. Starting ours at a random point
# keeps ids apart when several simulator processes call one service in the same second.
_sequence = itertools.count(random.randrange(1, 1_000_000))


def agi_environment(
    route: str = "keybox",
    *,
    address: str | None = None,
    program: str | None = None,
    query: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    language: str = "en",
    caller_id: str | None = "+15555550100",
    caller_name: str | None = None,
    dnid: str = "8005550199",
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The `agi_*` keys and values, in the order Asterisk sends them.

    Give `address` (`host:port`) for FastAGI, with an optional `query` on the script; or
    `program` for classic AGI, whose arguments are the route then `args`. A None caller id or
    name is sent as `unknown`, as Asterisk does for a withheld one. `overrides` replace or add
    keys (an added key goes last).
    """
    if (address is None) == (program is None):
        raise ValueError("give either address (FastAGI) or program (classic AGI)")
    sequence = next(_sequence)
    lines: dict[str, str] = {}
    if address is not None:
        script = route + (f"?{urlencode(dict(query))}" if query else "")
        lines["agi_network"] = "yes"
        lines["agi_network_script"] = script
        lines["agi_request"] = f"agi://{address}/{script}"
    elif program is not None:
        lines["agi_request"] = program
    lines |= {
        "agi_channel": f"PJSIP/qa-{sequence:08x}",
        "agi_language": language,
        "agi_type": "PJSIP",
        "agi_uniqueid": f"{int(time.time())}.{sequence}",
        "agi_version": ASTERISK_VERSION,
        "agi_callerid": caller_id or "unknown",
        "agi_calleridname": caller_name or "unknown",
        "agi_callingpres": "0",
        "agi_callingani2": "0",
        "agi_callington": "0",
        "agi_callingtns": "0",
        "agi_dnid": dnid,
        "agi_rdnis": "unknown",
        "agi_context": "keybox-public",
        "agi_extension": dnid,
        "agi_priority": "2",
        "agi_enhanced": "0.0",
        "agi_accountcode": "",
        "agi_threadid": str(139_800_000_000_000 + sequence * 8_392_704),
    }
    if program is not None:
        lines |= {f"agi_arg_{number}": arg for number, arg in enumerate([route, *args], start=1)}
    return lines | dict(overrides or {})
