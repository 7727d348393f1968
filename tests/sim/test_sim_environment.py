from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from ivr.sim import agi_environment
from ivr.transports.agi import AgiEnvironment

if TYPE_CHECKING:
    from conftest import FastAgi

# setup_env's order (res_agi.c), after launch_netscript's two FastAGI lines.
SETUP_ENV_KEYS = [
    "agi_request",
    "agi_channel",
    "agi_language",
    "agi_type",
    "agi_uniqueid",
    "agi_version",
    "agi_callerid",
    "agi_calleridname",
    "agi_callingpres",
    "agi_callingani2",
    "agi_callington",
    "agi_callingtns",
    "agi_dnid",
    "agi_rdnis",
    "agi_context",
    "agi_extension",
    "agi_priority",
    "agi_enhanced",
    "agi_accountcode",
    "agi_threadid",
]


async def test_fastagi_environment_lines_in_asterisk_order(fastagi: FastAgi) -> None:
    call = await fastagi.dial(route="keybox", query={"lang": "fr"}, language="es", caller_id="+15145550123")

    lines = call.service.environment
    keys = [line.partition(": ")[0] for line in lines]
    assert keys == ["agi_network", "agi_network_script", *SETUP_ENV_KEYS]
    assert lines[:3] == [
        "agi_network: yes",
        "agi_network_script: keybox?lang=fr",
        f"agi_request: agi://{fastagi.address}/keybox?lang=fr",
    ]
    assert "agi_accountcode: " in lines
    env = AgiEnvironment.from_lines(lines)
    assert (env.route, dict(env.query), env.language, env.caller_id) == ("keybox", {"lang": "fr"}, "es", "+15145550123")
    assert (env.get("agi_type"), env.get("agi_version"), env.context) == ("PJSIP", "20.10.0", "keybox-public")
    assert (env.get("agi_priority"), env.get("agi_rdnis"), env.get("agi_enhanced")) == ("2", "unknown", "0.0")
    assert env.channel.startswith("PJSIP/qa-")
    assert env.caller_id_name is None
    assert (await call.hang_up_and_result()).unique_id == env.unique_id


async def test_each_call_has_its_own_uniqueid_and_channel(fastagi: FastAgi) -> None:
    first = AgiEnvironment.from_lines((await fastagi.dial()).service.environment)
    second = AgiEnvironment.from_lines((await fastagi.dial(route="identify")).service.environment)

    assert first.unique_id != second.unique_id
    assert first.channel != second.channel
    assert first.unique_id.partition(".")[0].isdigit() and first.unique_id.partition(".")[2].isdigit()
    assert second.route == "identify"
    assert second.network_script == "identify"


def test_classic_environment_has_arguments_and_no_network_lines() -> None:
    env = agi_environment("announce", program="/usr/share/asterisk/agi-bin/keybox", args=["job-7"], caller_id=None)

    assert "agi_network" not in env and "agi_network_script" not in env
    assert next(iter(env)) == "agi_request"
    assert env["agi_request"] == "/usr/share/asterisk/agi-bin/keybox"
    assert (env["agi_arg_1"], env["agi_arg_2"]) == ("announce", "job-7")
    assert env["agi_callerid"] == "unknown"
    assert AgiEnvironment.from_lines(f"{k}: {v}" for k, v in env.items()).route == "announce"


def test_overrides_replace_and_add_lines() -> None:
    env = agi_environment(address="10.0.0.5:4573", overrides={"agi_language": "fr", "agi_x_test": "1"})

    assert env["agi_language"] == "fr"
    assert list(env)[-1] == "agi_x_test"


def test_exactly_one_of_address_and_program() -> None:
    with pytest.raises(ValueError, match="either address"):
        agi_environment()
    with pytest.raises(ValueError, match="either address"):
        agi_environment(address="h:1", program="/bin/x")
