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
from types import SimpleNamespace

import astconf
import keybox_asterisk_entrypoint as entrypoint
import pytest
import yaml

from ivr.catalog import PROMPT_IDS
from ivr.flow.runner import ROUTES
from ivr.outbound._models import JobKind, attempt_id, new_job_id
from ivr.outbound.platforms.asterisk import AsteriskPlatform
from ivr.outbound.platforms.asterisk import _platform as asterisk_platform
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


# What the asterisk platform sends: its Originate of each kind, made by the platform itself
# (contexts, extension, priority and variable names are read from it, not written here).
SERVICE_DIAL = COMPOSE["services"]["ivr"]["environment"]["IVR_OUTBOUND_DIAL"]
SAMPLE_NUMBERS = ("201", "+15145550100", "5550100")


def originate(kind: JobKind, dial_template: str = SERVICE_DIAL) -> tuple[dict[str, str], dict[str, str]]:
    """The platform's Originate headers for a job of `kind`, and its variables by name."""
    platform = AsteriskPlatform(host="asterisk", port=5038, username="keybox", secret="-", dial_template=dial_template)
    job = SimpleNamespace(id=new_job_id(), kind=kind, to="201", agent="PJSIP/agent1")
    headers = platform.originate(SimpleNamespace(job=job, attempt=SimpleNamespace(id=attempt_id(job.id, 1))))
    variables = dict(str(v).partition("=")[::2] for v in headers["Variable"])
    return {k: v for k, v in headers.items() if isinstance(v, str)}, variables


def variable_holding(variables: dict[str, str], value: str) -> str:
    (name,) = [name for name, held in variables.items() if held == value]
    return name


NOTICE, NOTICE_VARIABLES = originate(JobKind.NOTICE)
BRIDGE, BRIDGE_VARIABLES = originate(JobKind.BRIDGE)
JOB_VARIABLE = variable_holding(NOTICE_VARIABLES, NOTICE["ActionID"].rpartition("-")[0])
ATTEMPT_VARIABLE = variable_holding(NOTICE_VARIABLES, NOTICE["ActionID"])
BRIDGE_DIAL_VARIABLE = variable_holding(BRIDGE_VARIABLES, SERVICE_DIAL.format(number="201"))

# What the platform reads back from a bridge: the h extension's UserEvent. The platform matches
# the event name and these headers (case-insensitively) without exporting them as constants;
# the names are its own (ivr/outbound/platforms/asterisk/_platform.py and the simulated
# Asterisk, ivr/sim/_ami_calls.py), taken from the platform once it exports BRIDGE_EVENT.
BRIDGE_EVENT = getattr(asterisk_platform, "BRIDGE_EVENT", "KeyboxBridge")
BRIDGE_EVENT_HEADERS = {"Job": JOB_VARIABLE, "Attempt": ATTEMPT_VARIABLE, "DialStatus": "DIALSTATUS"}

SERVICE_AMI_EVENTS = ("OriginateResponse", "Newstate", "Hangup", "UserEvent")
"""The AMI events the asterisk platform follows a call by."""


def service_ami_actions() -> set[str]:
    """Every AMI action the asterisk platform sends (`"Action": "<name>"` in its source)."""
    folder = Path(asterisk_platform.__file__).parent
    return {m for path in folder.glob("*.py") for m in re.findall(r'"Action":\s*"(\w+)"', path.read_text())}


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


def test_extensions_conf_lists_every_context_in_its_table() -> None:
    assert astconf.check_context_table((CONF / "extensions.conf").read_text(), contexts()) == []


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
        NOTICE["Context"]: "where the service's notices land",
        BRIDGE["Context"]: "where the agent's leg of a bridge lands",
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


# -- outbound calls: the Originate, the contexts, the AMI user, compose ----------------------------


def test_outbound_calls_land_at_s_1_of_their_contexts() -> None:
    assert NOTICE["Context"] == asterisk_platform.ANNOUNCE_CONTEXT
    assert BRIDGE["Context"] == asterisk_platform.BRIDGE_CONTEXT
    for headers in (NOTICE, BRIDGE):
        assert (headers["Exten"], headers["Priority"]) == ("s", "1")
        assert contexts()[headers["Context"]].has_priority("s", "1"), headers["Context"]
    assert (JOB_VARIABLE, ATTEMPT_VARIABLE, BRIDGE_DIAL_VARIABLE) == ("IVR_JOB_ID", "IVR_ATTEMPT_ID", "IVR_BRIDGE_DIAL")


def test_a_notice_runs_announce_with_its_job_and_attempt() -> None:
    """keybox-announce passes `job` and `attempt` from the Originate's variables, URI-encoded."""
    assert "announce" in ROUTES
    query = {"job": JOB_VARIABLE, "attempt": ATTEMPT_VARIABLE}
    assert astconf.check_announce(contexts(), NOTICE["Context"], "announce", query) == []


def test_a_bridge_dials_the_key_holder_and_reports_how_it_ended() -> None:
    """keybox-bridge dials ${IVR_BRIDGE_DIAL} (filtered: the line's dial strings pass, `&` and
    `,` do not) and its h extension sends UserEvent(KeyboxBridge,Job:,Attempt:,DialStatus:)."""
    templates = (SERVICE_DIAL, Settings.model_fields["outbound_dial"].default)
    samples = [template.format(number=number) for template in templates for number in SAMPLE_NUMBERS]
    assert astconf.check_bridge(contexts(), BRIDGE["Context"], dial_variable=BRIDGE_DIAL_VARIABLE,
                                dial_samples=samples, event=BRIDGE_EVENT, headers=BRIDGE_EVENT_HEADERS) == []


def test_no_phone_enters_the_outbound_contexts() -> None:
    """Only the service's Originate enters them: no endpoint's context, no `include =>`."""
    outbound = {NOTICE["Context"], BRIDGE["Context"]}
    assert {s.get("context") for s in load("pjsip.conf").of_type("endpoint")} & outbound == set()
    assert {name for c in contexts().values() for name, _ in c.includes} & outbound == set()


def test_the_service_may_do_over_ami_what_it_does_and_no_more() -> None:
    """manager.conf's user may run every action the platform sends (CoreShowChannels: write
    `reporting`, the least of its two classes) and receives the events it follows; it writes
    nothing of system, command or config, and reads no class that carries codes."""
    actions = service_ami_actions()
    assert {"Originate", "CoreShowChannels", "Ping", "Login"} <= actions
    username = COMPOSE["services"]["ivr"]["environment"]["IVR_AMI_USERNAME"]
    assert astconf.check_ami_user(load("manager.conf"), username, actions, SERVICE_AMI_EVENTS) == []
    user = load("manager.conf").first(username)
    assert user is not None
    assert astconf.ami_classes(user.get("read")) == {"call", "user"}
    assert astconf.ami_classes(user.get("write")) <= {"call", "originate", "reporting"}


def test_the_service_reaches_the_ami_as_its_user() -> None:
    """IVR_AMI_HOST is the name of the address the AMI binds to; user and secret are
    manager.conf's, the secret the same .env name (AMI_SECRET) as Asterisk's."""
    general = load("manager.conf").first("general")
    assert general is not None
    bind = general.get("bindaddr")
    hosts = {bind} | {name for name, s in COMPOSE["services"].items()
                      if (s.get("networks") or {}).get("default", {}).get("ipv4_address") == bind}
    assert hosts == {bind, "asterisk"}
    environment = COMPOSE["services"]["ivr"]["environment"]
    assert astconf.check_ami_client(environment, load("manager.conf"), hosts) == []
    assert int(general.get("port") or 0) == Settings.model_fields["ami_port"].default


def test_the_outbound_dial_reaches_the_lines_phones() -> None:
    """The shipped IVR_OUTBOUND_DIAL is valid for the service and names a context (Local/) or
    endpoint (PJSIP/) that exists; the agents' extensions answer through it."""
    assert Settings(outbound_dial=SERVICE_DIAL).outbound_dial == SERVICE_DIAL
    assert astconf.check_dial_template(SERVICE_DIAL, contexts(), load("pjsip.conf")) == []
    context = SERVICE_DIAL.rpartition("@")[2]
    assert contexts()[context].matching("201") and contexts()[context].matching("202")


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
    "app_dial.so", "app_userevent.so", "func_strings.so",  # keybox-bridge: Dial, UserEvent, FILTER
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
