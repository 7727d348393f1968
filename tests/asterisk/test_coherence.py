"""The Asterisk configuration agrees with the service, with itself and with docker-compose.yml.

Each check of `astconf` runs on the real files here; `test_checks_fail.py` proves that each
one fails on a broken configuration.
"""

from __future__ import annotations

import ipaddress
import json
import re
from functools import cache
from pathlib import Path

import astconf
import keybox_asterisk_entrypoint as entrypoint
import pytest
import yaml

from ivr.catalog import PROMPT_IDS
from ivr.flow.runner import ROUTES
from ivr.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "asterisk-conf"
DIALPLANS = ROOT / "dialplans"
RESOLVE = astconf.folder_resolver(CONF, {"dialplans/": DIALPLANS})
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
ASTERISK = COMPOSE["services"]["asterisk"]

try:  # the ARI transport names the context a transfer continues in
    from ivr.transports.ari import TRANSFER_CONTEXT
except ImportError:  # pragma: no cover - before the ARI transport lands
    TRANSFER_CONTEXT = "keybox-operator"


@cache
def load(name: str) -> astconf.Config:
    return astconf.parse((CONF / name).read_text(), name, RESOLVE)


@cache
def contexts() -> dict[str, astconf.Context]:
    return astconf.dialplan(load("extensions.conf"))


def service_networks() -> astconf.Networks:
    subnets = [c["subnet"] for c in COMPOSE["networks"]["default"]["ipam"]["config"]]
    return [ipaddress.ip_network(s) for s in subnets]


# -- the files read as Asterisk reads them ----------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.name for p in CONF.glob("*.conf")))
def test_each_file_reads_cleanly(name: str) -> None:
    assert load(name).problems == []


def test_extensions_conf_includes_every_dialplan_file() -> None:
    included = set(load("extensions.conf").files) - {"extensions.conf"}
    assert included == {f"dialplans/{p.name}" for p in DIALPLANS.glob("*.conf")}


# -- the dialplan and the service ---------------------------------------------------------------


def test_every_agi_and_stasis_route_is_served() -> None:
    assert astconf.check_routes(contexts(), ROUTES) == []


def test_the_dialplan_uses_every_transport_and_route() -> None:
    steps = [s for c in contexts().values() for s in c.steps]
    targets = {s.args[0].split("?")[0] for s in steps if s.app == "AGI"}
    assert {"agi://ivr:4573/keybox", "agi://ivr:4573/identify", "agi://ivr:4573/announce", "ivr-agi"} <= targets
    assert {tuple(s.args) for s in steps if s.app == "Stasis"} == {("keybox", "keybox"), ("keybox", "identify")}


def test_every_sound_played_is_a_prompt() -> None:
    assert astconf.check_sounds(contexts(), PROMPT_IDS) == []


def test_every_context_queue_and_target_exists() -> None:
    entry_points = {
        TRANSFER_CONTEXT: "where ARI continues a transfer",
        "keybox-announce": "where the service's outbound calls land",
        "keybox-public": "the carrier's context",
    }
    assert astconf.check_contexts(contexts(), load("queues.conf"), entry_points=entry_points) == []


def test_transfers_continue_at_s_1_and_run_ivr_transfer() -> None:
    operator = contexts()[TRANSFER_CONTEXT]
    assert operator.has_priority("s", "1")
    execs = [s for s in operator.steps if s.exten == "s" and s.app == "Exec"]
    assert [s.args for s in execs] == [["${IVR_TRANSFER}"]]


def test_an_agent_sees_the_key_the_step_and_gets_the_call_id() -> None:
    """The caller's name on the agent's phone is `Key <key number> <step>`; the call id goes to
    the agent's leg (inherited variable, and X-Keybox-Call on the queue members' INVITEs)."""
    assert astconf.check_agent_view(contexts(), TRANSFER_CONTEXT) == []


def test_the_unreachable_service_fallback_is_never_silent() -> None:
    """AGISTATUS/STASISSTATUS failures go to `unavailable`, which plays system-unavailable and
    then queues the caller."""
    unavailable = [s for s in contexts()["keybox-operator"].steps if s.exten == "unavailable"]
    assert ("Playback", ["keybox/system-unavailable"]) in [(s.app, s.args) for s in unavailable]
    assert unavailable[-1].app == "Goto" and unavailable[-1].args == ["agents", "1"]
    agents = [s for s in contexts()["keybox-operator"].steps if s.exten == "agents"]
    assert agents[0].app == "Queue" and agents[0].args[0] == "keybox-agents"
    for context in contexts().values():
        for step in context.steps:
            if step.app in ("AGI", "Stasis") and context.name != "keybox-announce":
                following = [s for s in context.steps
                             if s.exten == step.exten and int(s.priority) == int(step.priority) + 1]
                assert following and following[0].app == "GotoIf", step.where
                assert "keybox-operator,unavailable,1" in ",".join(following[0].args), step.where


@pytest.mark.parametrize("operator", [Settings.model_fields["operator"].default,
                                      COMPOSE["services"]["ivr"]["environment"]["IVR_OPERATOR"]])
def test_the_default_operator_reaches_the_agents_queue(operator: str) -> None:
    assert astconf.check_application(operator, load("queues.conf"), "IVR_OPERATOR") == []
    assert operator.startswith("Queue(")


def test_the_service_reaches_ari_as_its_user_and_application() -> None:
    environment = COMPOSE["services"]["ivr"]["environment"]
    http, ari = load("http.conf").first("general"), load("ari.conf")
    assert http is not None
    assert environment["IVR_ARI_URL"] == f"http://asterisk:{http.get('bindport')}"
    user = ari.first(environment.get("IVR_ARI_USER", Settings.model_fields["ari_user"].default))
    assert user is not None and user.get("type") == "user" and user.get("read_only") == "no"
    assert environment["IVR_ARI_PASSWORD"] == "${ARI_PASSWORD:-}" and user.get("password") == "${ARI_PASSWORD}"
    assert Settings.model_fields["ari_app"].default == astconf.STASIS_APP


# -- PJSIP, the queue, the listeners -------------------------------------------------------------


def test_endpoints_auths_aors_and_templates_agree() -> None:
    assert astconf.check_pjsip(load("pjsip.conf"), contexts()) == []


def test_the_phones_of_qa_and_the_agents() -> None:
    endpoints = {s.name: s for s in load("pjsip.conf").of_type("endpoint")}
    assert {"qa1", "qa2", "agent1", "agent2"} <= set(endpoints)
    for endpoint in endpoints.values():
        assert endpoint.get("dtmf_mode") == "rfc4733", endpoint.name
        assert endpoint.get("allow") == "!all,ulaw,alaw", endpoint.name
        assert endpoint.get("direct_media") == "no", endpoint.name
    transports = {s.get("protocol"): s.get("bind") for s in load("pjsip.conf").of_type("transport")}
    assert transports == {"udp": "0.0.0.0:5060", "tcp": "0.0.0.0:5060"}


def test_queue_members_are_endpoints() -> None:
    assert astconf.check_queue_members(load("queues.conf"), load("pjsip.conf")) == []
    members = load("queues.conf").first("keybox-agents")
    assert members is not None and len(members.values("member")) == 2


def test_ami_and_ari_listen_on_the_service_network_only() -> None:
    assert astconf.check_listeners(load("manager.conf"), load("http.conf"), service_networks()) == []


def test_ami_and_ari_bind_to_the_asterisk_containers_address() -> None:
    address = ASTERISK["networks"]["default"]["ipv4_address"]
    assert ipaddress.ip_address(address) in service_networks()[0]
    manager, http = load("manager.conf").first("general"), load("http.conf").first("general")
    assert manager is not None and http is not None
    assert manager.get("bindaddr") == address
    assert http.get("bindaddr") == address
    local_nets = {s.get("local_net") for s in load("pjsip.conf").of_type("transport")}
    assert local_nets == {str(service_networks()[0])}
    user = load("manager.conf").first("keybox")
    assert user is not None
    permits = [ipaddress.ip_network(p.replace(" ", ""), strict=False) for p in user.values("permit")]
    assert service_networks()[0] in permits, "the service, on the compose network, may log in to the AMI"


def test_every_secret_comes_from_the_deployment() -> None:
    configs = {p.name: load(p.name) for p in CONF.glob("*.conf")}
    assert astconf.check_secrets(configs) == []


def test_every_placeholder_is_documented_and_passed_by_compose() -> None:
    used = {p.name: entrypoint.placeholders(p.read_text()) for p in CONF.glob("*.conf")}
    documented = astconf.env_names((CONF / "asterisk.env.example").read_text())
    assert astconf.check_placeholders(used, documented) == []
    names = {name for names in used.values() for name in names}
    assert names >= {"QA1_PASSWORD", "QA2_PASSWORD", "AGENT1_PASSWORD", "AGENT2_PASSWORD", "AMI_SECRET", "ARI_PASSWORD"}
    for name in names:
        assert re.fullmatch(rf"\$\{{{name}(:-[^}}]*)?\}}", ASTERISK["environment"][name]), name


def test_the_example_holds_no_secret() -> None:
    for line in (CONF / "asterisk.env.example").read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#") and name.strip().endswith(entrypoint.SECRET_SUFFIXES):
            assert value.strip() == "", f"{name} has a value in the example"


# -- what Asterisk loads, logs and opens ----------------------------------------------------------

NEEDED_MODULES = {
    "chan_pjsip.so", "res_pjsip.so", "res_pjsip_session.so", "res_pjsip_registrar.so",
    "res_pjsip_authenticator_digest.so",
    "res_pjsip_endpoint_identifier_ip.so", "res_pjsip_endpoint_identifier_user.so", "res_rtp_asterisk.so",
    "pbx_config.so", "res_agi.so", "app_exec.so", "app_queue.so", "app_playback.so", "app_stasis.so",
    "res_stasis.so", "res_ari.so", "res_ari_channels.so", "res_ari_events.so", "res_ari_playbacks.so",
    "res_stasis_playback.so", "res_http_websocket.so", "res_musiconhold.so",
    "func_channel.so", "func_uri.so", "func_logic.so", "codec_ulaw.so", "codec_alaw.so", "format_wav.so",
    "format_pcm.so", "res_timing_timerfd.so", "res_crypto.so",
    "res_pjproject.so", "res_websocket_client.so",  # res_pjsip and res_ari require them
}


def test_modules_keep_what_the_line_needs() -> None:
    modules = load("modules.conf").first("modules")
    assert modules is not None and modules.get("autoload") == "yes"
    assert set(modules.values("noload")) & NEEDED_MODULES == set()
    assert "chan_sip.so" in modules.values("noload")


DEBIAN_SOUNDS = {  # Debian package -> where it puts its files (dpkg -c, trixie = bookworm: 1.6.1-1, 2.03-1.1)
    "asterisk-core-sounds-en-wav": "/usr/share/asterisk/sounds/en_US_f_Allison",
    "asterisk-core-sounds-fr-wav": "/usr/share/asterisk/sounds/fr_CA_f_June",
    "asterisk-core-sounds-es-wav": "/usr/share/asterisk/sounds/es_MX_f_Allison",
    "asterisk-moh-opsound-wav": "/usr/share/asterisk/moh",
}


def test_sounds_and_music_are_where_debian_installs_them() -> None:
    """The image installs Debian's wav sounds; music on hold reads Debian's folder; the modules
    that play wav to a G.711 caller stay loaded."""
    dockerfile = (ROOT / "docker" / "asterisk" / "Dockerfile").read_text()
    for package in DEBIAN_SOUNDS:
        assert re.search(rf"\b{re.escape(package)}\b", dockerfile), package
    music = load("musiconhold.conf").first("default")
    assert music is not None and music.get("mode") == "files"
    assert music.get("directory") == DEBIAN_SOUNDS["asterisk-moh-opsound-wav"]
    astdatadir = load("asterisk.conf").first("directories")
    assert astdatadir is not None and astdatadir.get("astdatadir") == "/var/lib/asterisk"
    assert "/var/lib/asterisk/sounds/$lang" in dockerfile  # <astdatadir>/sounds: main/file.c
    noload = set(load("modules.conf").first("modules").values("noload"))  # type: ignore[union-attr]
    assert {"format_wav.so", "codec_ulaw.so", "codec_alaw.so"} & noload == set()


def test_no_log_holds_the_keys_callers_press() -> None:
    """At debug level Asterisk logs each DTMF digit: PINs. Debug 0, no debug or dtmf log."""
    options = load("asterisk.conf").first("options")
    assert options is not None and options.get("debug") == "0"
    logfiles = load("logger.conf").first("logfiles")
    assert logfiles is not None
    for entry in logfiles.entries:
        levels = {level.strip() for level in entry.value.split(",")}
        assert not levels & {"debug", "dtmf", "*"}, entry.where
    assert not any(arg.startswith("-d") or arg == "-c" for arg in entrypoint.DEFAULT_COMMAND[1:])


def start_commands() -> dict[str, list[str]]:
    """Every place the asterisk container's start command is written: the entrypoint's
    default, the Dockerfile's CMD and ENTRYPOINT, and compose's `command`/`entrypoint`."""
    commands = {"entrypoint.py DEFAULT_COMMAND": list(entrypoint.DEFAULT_COMMAND)}
    dockerfile = (ROOT / "docker" / "asterisk" / "Dockerfile").read_text()
    for instruction in ("CMD", "ENTRYPOINT"):
        for found in re.findall(rf"^{instruction}\s+(\[.*\])\s*$", dockerfile, re.MULTILINE):
            commands[f"docker/asterisk/Dockerfile {instruction}"] = json.loads(found)
    for key in ("command", "entrypoint"):
        if key in ASTERISK:
            value = ASTERISK[key]
            commands[f"docker-compose.yml asterisk {key}"] = value if isinstance(value, list) else value.split()
    return commands


def test_no_log_spells_out_the_codes_read_to_callers() -> None:
    """At verbose 3 Asterisk logs "Playing 'digits/4.wav'" for each digit of SAY DIGITS,
    SayDigits and ARI digit playbacks: the console (docker logs) would spell out the update
    and CBS codes. Verbose 0 everywhere, no verbose/debug/trace/dtmf channel, no -v/-d."""
    names = ("asterisk.conf", "logger.conf", "pjsip.conf", "manager.conf", "cdr.conf", "cel.conf")
    commands = start_commands()
    assert {"entrypoint.py DEFAULT_COMMAND", "docker/asterisk/Dockerfile CMD"} <= set(commands)
    assert astconf.check_logging({name: load(name) for name in names}, commands) == []


def test_operators_still_get_notices_warnings_and_errors() -> None:
    logfiles = load("logger.conf").first("logfiles")
    assert logfiles is not None
    channels = {entry.key: set(astconf.log_levels(entry.value)) for entry in logfiles.entries}
    assert channels["console"] == {"notice", "warning", "error"}
    assert channels["messages.log"] == {"notice", "warning", "error", "security"}


def test_asterisk_starts_without_warnings_or_errors() -> None:
    """Every file whose absence Asterisk 22 logs at start is shipped, or its module left out."""
    shipped = [p.name for p in CONF.glob("*.conf")]
    assert astconf.check_startup_files(load("modules.conf"), shipped) == []


def test_the_rtp_range_is_the_one_compose_publishes() -> None:
    rtp = load("rtp.conf").first("general")
    assert rtp is not None
    published = [p for p in ASTERISK["ports"] if p.endswith("/udp") and "5060" not in p]
    span = f"{rtp.get('rtpstart')}-{rtp.get('rtpend')}"
    assert published == [f"${{LINE_PUBLISH_ADDRESS:-127.0.0.1}}:{span}:{span}/udp"]
