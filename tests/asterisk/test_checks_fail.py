"""Each coherence check of `astconf` fails on a configuration that is broken its way.

The broken configurations are small texts read by the same reader as the real files.
"""

from __future__ import annotations

import ipaddress

import astconf
import pytest

ROUTES = ("keybox", "identify", "announce")
PROMPTS = ("welcome", "goodbye", "system-unavailable")
NETWORKS: astconf.Networks = [ipaddress.ip_network("172.28.73.0/24")]
QUEUES = astconf.parse("[general]\n[keybox-agents]\nmember => PJSIP/agent1\n", "queues.conf")


def plan(text: str, **files: str) -> dict[str, astconf.Context]:
    config = astconf.parse(text, "extensions.conf", astconf.text_resolver(files))
    assert config.problems == []
    return astconf.dialplan(config)


def one(problems: list[str], *words: str) -> None:
    assert len(problems) == 1, problems
    for word in words:
        assert word in problems[0], problems[0]


# -- the reader --------------------------------------------------------------------------------


def test_reader_sections_templates_comments_and_includes() -> None:
    text = """
    ; a comment
    [base](!)            ; a template
    type = endpoint
    allow = !all,ulaw    ; trailing comment
    [phone](base)
    context = a\\;b
    ;-- a block
    comment = hidden --;
    #include more.conf
    """
    config = astconf.parse(text, "x.conf", astconf.text_resolver({"more.conf": "[extra]\nkey => value\n"}))
    assert config.problems == []
    assert [s.name for s in config.sections] == ["base", "phone", "extra"]
    phone = config.sections[1]
    assert (phone.is_template, phone.templates, phone.get("type"), phone.get("allow")) == (
        False, ["base"], "endpoint", "!all,ulaw"
    )
    assert phone.get("context") == "a;b" and phone.get("comment") is None
    assert config.sections[2].entries[0].arrow


def test_reader_reports_what_asterisk_would_refuse() -> None:
    config = astconf.parse(
        "key = early\n[a](missing)\n#include gone.conf\nnot an entry\n", "x.conf", astconf.text_resolver({})
    )
    assert len(config.problems) == 4, config.problems


def test_dialplan_priorities_labels_and_patterns() -> None:
    contexts = plan("[c]\nexten => _1XX,1,NoOp()\n same => n(next),Goto(c,150,next)\nexten => s,1,Hangup()\n")
    steps = contexts["c"].steps
    assert [(s.exten, s.priority, s.label, s.app) for s in steps] == [
        ("_1XX", "1", None, "NoOp"), ("_1XX", "2", "next", "Goto"), ("s", "1", None, "Hangup")]
    assert contexts["c"].matching("150") == ["_1XX"] and contexts["c"].matching("250") == []
    assert astconf.extension_matches("_[a-z][a-z]", "fr") and not astconf.extension_matches("_[a-z][a-z]", "s")
    assert astconf.parse_app("AGI(agi://h/announce?job=${URIENCODE(${X})},a)") == (
        "AGI", ["agi://h/announce?job=${URIENCODE(${X})}", "a"]
    )


# -- routes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "word"), [
    ("AGI(agi://ivr:4573/keybx)", "'keybx'"),
    ("AGI(hagi://keybox.example.com/nope)", "'nope'"),
    ("AGI(agi://ivr:4573)", "names no route"),
    ("AGI(ivr-agi,identifyy)", "'identifyy'"),
    ("AGI(ivr-agi)", "names no route"),
    ("AGI(/usr/bin/other.sh,keybox)", "not ivr-agi"),
    ("AGI(agi://ivr/${ROUTE})", "computed"),
    ("AGI(hagi://keybox.example.com:4573/keybox)", "SRV"),
    ("Stasis(keybox,nope)", "'nope'"),
    ("Stasis(keybox)", "''"),
    ("Stasis(other,keybox)", "'other'"),
])
def test_a_route_the_service_does_not_serve_fails(line: str, word: str) -> None:
    one(astconf.check_routes(plan(f"[c]\nexten => 1,1,{line}\n"), ROUTES), word)


def test_good_routes_pass() -> None:
    contexts = plan("[c]\nexten => 1,1,AGI(agi://ivr:4573/keybox)\n same => n,AGI(hagi://k.example/identify)\n"
                    " same => n,AGI(agi://ivr/announce?job=${URIENCODE(${J})})\n same => n,AGI(ivr-agi,keybox)\n"
                    " same => n,Stasis(keybox,identify)\n")
    assert astconf.check_routes(contexts, ROUTES) == []


# -- sounds ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "word"), [
    ("Playback(keybox/welcom)", "keybox/welcom"),
    ("Background(tt-monkeys)", "tt-monkeys"),
    ("Playback(keybox/welcome&keybox/nope)", "keybox/nope"),
    ("Read(X,keybox/nope,4)", "keybox/nope"),
])
def test_a_sound_that_is_not_a_prompt_fails(line: str, word: str) -> None:
    one(astconf.check_sounds(plan(f"[c]\nexten => 1,1,{line}\n"), PROMPTS), word)


def test_prompts_pass() -> None:
    contexts = plan("[c]\nexten => 1,1,Playback(keybox/welcome&keybox/goodbye,noanswer)\n")
    assert astconf.check_sounds(contexts, PROMPTS) == []


# -- contexts, targets, queues --------------------------------------------------------------------


@pytest.mark.parametrize(("body", "word"), [
    ("include => nowhere", "nowhere"),
    ("exten => 1,1,Goto(nowhere,s,1)", "nowhere"),
    ("exten => 1,1,Goto(d,9,1)", "no extension '9'"),
    ("exten => 1,1,Goto(d,s,5)", "no priority '5'"),
    ("exten => 1,1,Goto(d,s,missing)", "no priority 'missing'"),
    ("exten => 1,1,Goto(nope,1)", "no extension 'nope'"),
    ("exten => 1,1,GotoIf($[${X} = 1]?d,s,1:gone,s,1)", "'gone'"),
    ("exten => 1,1,Gosub(gone,s,1(arg))", "'gone'"),
    ("exten => 1,1,Dial(Local/100@gone)", "'gone'"),
    ("exten => 1,1,Queue(keybox-agent)", "keybox-agent"),
])
def test_a_missing_context_extension_or_queue_fails(body: str, word: str) -> None:
    contexts = plan(f"[c]\n{body}\n[d]\nexten => s,1,NoOp()\n same => n(there),Hangup()\n")
    one(astconf.check_contexts(contexts, QUEUES), word)


def test_a_missing_entry_point_fails() -> None:
    one(astconf.check_contexts(plan("[c]\nexten => s,1,Hangup()\n"), QUEUES, entry_points={"keybox-operator": "ARI"}),
        "keybox-operator")


def test_good_targets_pass() -> None:
    contexts = plan("[c]\ninclude => d\nexten => 1,1,Goto(d,s,there)\n same => n,GotoIf($[1]?d,s,1:2)\n"
                    " same => n,Dial(Local/s@d)\n same => n,Queue(keybox-agents)\n[d]\nexten => s,1,NoOp()\n"
                    " same => n(there),Hangup()\n")
    assert astconf.check_contexts(contexts, QUEUES) == []


OPERATOR = """
[keybox-operator]
exten => s,1,GotoIf($["${IVR_TRANSFER}" = ""]?unavailable,1)
 same => n,Set(CALLERID(name)=Key ${FILTER(*0-9,${IVR_KEY_NUMBER}):0:16} ${FILTER(-a-z,${IVR_LAST_STEP}):0:24})
 same => n,Set(__IVR_CALL_ID=${FILTER(0-9.,${IVR_CALL_ID}):0:64})
 same => n,Exec(${IVR_TRANSFER})
exten => agents,1,Queue(keybox-agents,b(keybox-operator^agent-leg^1))
exten => agent-leg,1,ExecIf($["${IVR_CALL_ID}" != ""]?Set(PJSIP_HEADER(add,X-Keybox-Call)=${IVR_CALL_ID}))
 same => n,Return()
"""


def test_an_agent_view_with_key_step_and_call_id_passes() -> None:
    assert astconf.check_agent_view(plan(OPERATOR), "keybox-operator") == []


@pytest.mark.parametrize(("old", "new", "word"), [
    ("Set(CALLERID(name)=", "Set(CALLERID(num)=", "no CALLERID(name)"),
    ("${FILTER(*0-9,${IVR_KEY_NUMBER}):0:16}", "${IVR_KEY_NUMBER}", "IVR_KEY_NUMBER"),
    ("${FILTER(-a-z,${IVR_LAST_STEP}):0:24}", "${FILTER(-a-z,${IVR_LAST_STEP})}", "IVR_LAST_STEP"),
    ("Set(__IVR_CALL_ID=", "Set(IVR_CALL_ID=", "IVR_CALL_ID"),
    ("Queue(keybox-agents,b(keybox-operator^agent-leg^1))", "Queue(keybox-agents)", "pre-dial handler"),
    ("X-Keybox-Call)=${IVR_CALL_ID}", "X-Keybox-Call)=${IVR_OUTCOME}", "X-Keybox-Call"),
    (" same => n,Return()\n", "", "Return()"),
])
def test_an_agent_view_without_key_step_or_call_id_fails(old: str, new: str, word: str) -> None:
    assert old in OPERATOR
    one(astconf.check_agent_view(plan(OPERATOR.replace(old, new)), "keybox-operator"), word)


def test_an_agent_view_set_after_the_hand_over_fails() -> None:
    late = OPERATOR.replace(" same => n,Exec(${IVR_TRANSFER})\n", "").replace(
        "exten => s,1,GotoIf", "exten => s,1,Exec(${IVR_TRANSFER})\n same => n,GotoIf")
    problems = astconf.check_agent_view(plan(late), "keybox-operator")
    assert len(problems) == 2 and "CALLERID(name)" in problems[0] and "IVR_CALL_ID" in problems[1], problems
    one(astconf.check_agent_view(plan(OPERATOR), "keybox-transfer"), "not defined")


def test_an_operator_application_naming_no_queue_fails() -> None:
    one(astconf.check_application("Queue(keybox-agentz)", QUEUES, "IVR_OPERATOR"), "keybox-agentz")
    assert astconf.check_application("Queue(keybox-agents)", QUEUES, "IVR_OPERATOR") == []


# -- PJSIP -------------------------------------------------------------------------------------

PJSIP_GOOD = """
[t](!)
type = endpoint
context = c
[a1]
type = auth
auth_type = userpass
username = a1
password = ${A1_PASSWORD}
[a1]
type = aor
[a1](t)
auth = a1
aors = a1
"""


@pytest.mark.parametrize(("text", "word"), [
    ("[e]\ntype = endpoint\ncontext = c\nauth = ghost\n", "ghost"),
    ("[e]\ntype = endpoint\ncontext = c\naors = ghost\n", "ghost"),
    ("[e]\ntype = endpoint\ncontext = c\noutbound_auth = ghost\n", "ghost"),
    ("[e]\ntype = endpoint\ncontext = c\ntransport = ghost\n", "ghost"),
    ("[e](ghost-template)\ntype = endpoint\ncontext = c\n", "ghost-template"),
    ("[e]\ntype = endpoint\ncontext = nowhere\n", "nowhere"),
    ("[e]\ntype = endpoint\n", "no context"),
    ("[i]\ntype = identify\nendpoint = ghost\nmatch = 192.0.2.1\n", "ghost"),
    ("[e]\ncontext = c\n", "no type"),
])
def test_a_dangling_pjsip_reference_fails(text: str, word: str) -> None:
    one(astconf.check_pjsip(astconf.parse(text, "pjsip.conf"), plan("[c]\nexten => s,1,Hangup()\n")), word)


def test_good_pjsip_passes() -> None:
    assert astconf.check_pjsip(astconf.parse(PJSIP_GOOD, "pjsip.conf"), plan("[c]\nexten => s,1,Hangup()\n")) == []


@pytest.mark.parametrize("member", ["PJSIP/ghost", "SIP/a1"])
def test_a_queue_member_that_is_no_endpoint_fails(member: str) -> None:
    queues = astconf.parse(f"[q]\nmember => {member},0,Name\n", "queues.conf")
    one(astconf.check_queue_members(queues, astconf.parse(PJSIP_GOOD, "pjsip.conf")), member)


def test_a_written_password_fails() -> None:
    config = astconf.parse("[a]\ntype = auth\npassword = 1234\n[m]\nsecret = ${OK_SECRET}\n", "x.conf")
    one(astconf.check_secrets({"x.conf": config}), "password")


# -- AMI and ARI listeners ---------------------------------------------------------------------

AMI_GOOD = ("[general]\nenabled = yes\nbindaddr = 172.28.73.10\n"
            "[u]\nsecret = ${S}\ndeny = 0.0.0.0/0.0.0.0\npermit = 172.28.73.0/255.255.255.0\n")
HTTP_GOOD = "[general]\nenabled = yes\nbindaddr = 172.28.73.10\n"


@pytest.mark.parametrize(("ami", "http", "word"), [
    ("[general]\nenabled = yes\nbindaddr = 0.0.0.0\n[u]\nsecret = ${S}\npermit = 172.28.73.0/24\n", HTTP_GOOD, "deny"),
    ("[general]\nenabled = yes\nbindaddr = 0.0.0.0\n[u]\nsecret = ${S}\ndeny = 0.0.0.0/0.0.0.0\n",
     HTTP_GOOD, "permits nothing"),
    ("[general]\nenabled = yes\nbindaddr = 8.8.8.8\n[u]\ndeny = 0.0.0.0/0.0.0.0\npermit = 172.28.73.0/24\n",
     HTTP_GOOD, "8.8.8.8"),
    ("[general]\nenabled = yes\nbindaddr = 192.168.1.5\n", HTTP_GOOD, "192.168.1.5"),
    ("[general]\nenabled = yes\nbindaddr = 0.0.0.0\n[u]\ndeny = 0.0.0.0/0.0.0.0\npermit = 0.0.0.0/0.0.0.0\n",
     HTTP_GOOD, "0.0.0.0/0"),
    (AMI_GOOD, "[general]\nenabled = yes\nbindaddr = 0.0.0.0\n", "no address ACL"),
    (AMI_GOOD, "[general]\nenabled = yes\nbindaddr = 203.0.113.7\n", "203.0.113.7"),
    (AMI_GOOD, "[general]\nenabled = yes\nbindaddr = 127.0.0.1\ntlsbindaddr = 0.0.0.0:8089\n", "tlsbindaddr"),
])
def test_ami_or_ari_beyond_the_service_network_fails(ami: str, http: str, word: str) -> None:
    one(astconf.check_listeners(astconf.parse(ami, "manager.conf"), astconf.parse(http, "http.conf"), NETWORKS), word)


@pytest.mark.parametrize(("ami", "http"), [
    (AMI_GOOD, HTTP_GOOD),
    ("[general]\nenabled = yes\nbindaddr = 0.0.0.0\n[u]\ndeny = 0.0.0.0/0.0.0.0\npermit = 127.0.0.1/32\n",
     "[general]\nenabled = yes\nbindaddr = 127.0.0.1\n"),
    ("[general]\nenabled = no\nbindaddr = 0.0.0.0\n", "[general]\nenabled = no\nbindaddr = 0.0.0.0\n"),
])
def test_listeners_inside_the_service_network_pass(ami: str, http: str) -> None:
    assert astconf.check_listeners(astconf.parse(ami, "manager.conf"), astconf.parse(http, "http.conf"), NETWORKS) == []


# -- placeholders ------------------------------------------------------------------------------


def test_an_undocumented_placeholder_fails() -> None:
    one(astconf.check_placeholders({"pjsip.conf": ["QA1_PASSWORD", "NEW_PASSWORD"]}, ["QA1_PASSWORD"]), "NEW_PASSWORD")
    assert astconf.check_placeholders({"pjsip.conf": ["QA1_PASSWORD"]}, ["QA1_PASSWORD"]) == []
    assert astconf.env_names("# c\nA=\n B = 1\n#C=2\n") == ["A", "B"]


# -- what Asterisk logs ------------------------------------------------------------------------

LOGGING_GOOD = {
    "asterisk.conf": "[options]\nverbose = 0\ndebug = 0\n",
    "logger.conf": "[logfiles]\nconsole => notice,warning,error\n"
                   "messages.log => [plain]notice,warning,error,security\n",
    "pjsip.conf": "[global]\ntype = global\ndebug = no\n",
    "manager.conf": "[general]\nenabled = yes\n[keybox]\nread = call\nwrite = call,originate\n",
    "cdr.conf": "[general]\nenable = no\n",
    "cel.conf": "[general]\nenable = no\n",
}
COMMAND_GOOD = {"CMD": ["/usr/sbin/asterisk", "-f", "-n", "-T", "-U", "asterisk", "-C", "/etc/asterisk/asterisk.conf"]}


def logging_problems(commands: dict[str, list[str]] | None = None, **changes: str) -> list[str]:
    texts = LOGGING_GOOD | {name.replace("_", "."): text for name, text in changes.items()}
    configs = {name: astconf.parse(text, name) for name, text in texts.items()}
    return astconf.check_logging(configs, COMMAND_GOOD if commands is None else commands)


def test_logging_that_keeps_codes_out_passes() -> None:
    assert logging_problems() == []
    assert logging_problems(asterisk_conf="[options]\n") == []  # absent is 0


@pytest.mark.parametrize(("file", "text", "word"), [
    ("asterisk.conf", "[options]\nverbose = 3\n", "verbose = 3"),
    ("asterisk.conf", "[options]\nverbose = 0\ndebug = yes\n", "debug = yes"),
    ("asterisk.conf", "[options]\ntrace = 1\n", "trace = 1"),
    ("asterisk.conf", "[directories]\n", "no [options]"),
    ("logger.conf", "[logfiles]\nconsole => notice,warning,error,verbose\n", "console takes verbose"),
    ("logger.conf", "[logfiles]\nmessages.log => notice,verbose(1)\n", "verbose(1)"),
    ("logger.conf", "[logfiles]\nfull.log => [json]notice,Debug\n", "debug"),
    ("logger.conf", "[logfiles]\nsyslog.local0 => warning,dtmf\n", "syslog.local0 takes dtmf"),
    ("logger.conf", "[logfiles]\nall.log => *\n", "takes *"),
    ("logger.conf", "[logfiles]\nconsole => notice\ntrace.log => trace\n", "trace"),
    ("pjsip.conf", "[global]\ntype = global\ndebug = yes\n", "SIP logger"),
    ("manager.conf", "[general]\n[keybox]\nread = call,agi\n", "reads agi"),
    ("manager.conf", "[general]\n[keybox]\nread = all\n", "reads all"),
    ("manager.conf", "[general]\n[keybox]\nread = call,dialplan,dtmf\n", "dialplan, dtmf"),
    ("cdr.conf", "[general]\nenable = yes\n", "cdr.conf"),
    ("cel.conf", "[general]\n", "cel.conf"),
])
def test_logging_that_spells_out_codes_fails(file: str, text: str, word: str) -> None:
    one(logging_problems(**{file.replace(".", "_"): text}), word)


@pytest.mark.parametrize("flag", ["-v", "-vvv", "-d", "-vvvdddf", "-fv"])
def test_a_verbose_or_debug_start_flag_fails(flag: str) -> None:
    one(logging_problems({"Dockerfile CMD": ["/usr/sbin/asterisk", "-f", flag, "-T"]}), flag)


def test_start_files_shipped_or_noloaded() -> None:
    modules = astconf.parse("[modules]\nautoload = yes\nnoload => app_amd.so\n", "modules.conf")
    needed = {"ccss.conf": None, "amd.conf": "app_amd.so", "agents.conf": "app_agent_pool.so"}
    assert astconf.check_startup_files(modules, ["ccss.conf", "agents.conf"], needed) == []
    one(astconf.check_startup_files(modules, ["agents.conf"], needed), "ccss.conf", "the core")
    one(astconf.check_startup_files(modules, ["ccss.conf"], needed), "agents.conf", "app_agent_pool.so")


# -- evaluating ${...} -------------------------------------------------------------------------


def test_substitute_evaluates_what_the_outbound_contexts_use() -> None:
    variables = {"D": "Local/201@keybox-internal&PJSIP/x,,U(y)", "J": "a b,c&d"}
    assert astconf.substitute("Dial(${FILTER(-+./0-9:@A-Z_a-z,${D})},30)", variables) == (
        "Dial(Local/201@keybox-internalPJSIP/xUy,30)")
    assert astconf.substitute("job=${URIENCODE(${J})}&x=${UNSET}", variables) == "job=a%20b%2Cc%26d&x="
    assert astconf.substitute("${FILTER(*0-9,${K}):0:3}-${K:2}", {"K": "1a2345"}) == "123-2345"
    assert astconf.filter_allowed("-a-c0") == {"-", "a", "b", "c", "0"}
    with pytest.raises(ValueError, match="SHELL"):
        astconf.substitute("${SHELL(id)}", {})


# -- outbound: keybox-announce -----------------------------------------------------------------

ANNOUNCE = """
[keybox-announce]
exten => s,1,NoOp()
 same => n,AGI(agi://ivr:4573/announce?job=${URIENCODE(${IVR_JOB_ID})}&attempt=${URIENCODE(${IVR_ATTEMPT_ID})})
 same => n,Hangup()
"""
ANNOUNCE_QUERY = {"job": "IVR_JOB_ID", "attempt": "IVR_ATTEMPT_ID"}


def test_an_announce_with_job_and_attempt_passes() -> None:
    assert astconf.check_announce(plan(ANNOUNCE), "keybox-announce", "announce", ANNOUNCE_QUERY) == []


@pytest.mark.parametrize(("old", "new", "word"), [
    ("&attempt=${URIENCODE(${IVR_ATTEMPT_ID})}", "", "no 'attempt'"),
    ("${URIENCODE(${IVR_ATTEMPT_ID})}", "${IVR_ATTEMPT_ID}", "URI-encoded"),
    ("${URIENCODE(${IVR_ATTEMPT_ID})}", "${URIENCODE(${IVR_JOB_ID})}", "'attempt'"),
    ("job=", "jobs=", "no 'job'"),
    ("/announce?", "/keybox?", "no AGI of the route 'announce'"),
    ("exten => s,1,NoOp()\n same => n,", "exten => 1,1,", "no s,1"),
])
def test_an_announce_without_job_or_attempt_fails(old: str, new: str, word: str) -> None:
    assert old in ANNOUNCE
    broken = ANNOUNCE.replace(old, new, 1)
    if word == "no s,1":  # the AGI then sits on another extension: both are reported
        problems = astconf.check_announce(plan(broken), "keybox-announce", "announce", ANNOUNCE_QUERY)
        assert any(word in p for p in problems), problems
        return
    one(astconf.check_announce(plan(broken), "keybox-announce", "announce", ANNOUNCE_QUERY), word)


def test_a_missing_announce_context_fails() -> None:
    one(astconf.check_announce(plan("[c]\nexten => s,1,Hangup()\n"), "keybox-announce", "announce",
                               ANNOUNCE_QUERY), "not defined")


# -- outbound: keybox-bridge -------------------------------------------------------------------

BRIDGE = """
[keybox-bridge]
exten => s,1,NoOp()
 same => n,Dial(${FILTER(-+./0-9:@A-Z_a-z,${IVR_BRIDGE_DIAL})},30)
 same => n,Hangup()
exten => h,1,UserEvent(KeyboxBridge,Job: ${IVR_JOB_ID},Attempt: ${IVR_ATTEMPT_ID},DialStatus: ${DIALSTATUS})
"""
BRIDGE_HEADERS = {"Job": "IVR_JOB_ID", "Attempt": "IVR_ATTEMPT_ID", "DialStatus": "DIALSTATUS"}
DIAL_SAMPLES = ("Local/201@keybox-internal", "PJSIP/+15145550100@carrier")


def bridge_problems(text: str) -> list[str]:
    return astconf.check_bridge(plan(text), "keybox-bridge", dial_variable="IVR_BRIDGE_DIAL",
                                dial_samples=DIAL_SAMPLES, event="KeyboxBridge", headers=BRIDGE_HEADERS)


def test_a_bridge_that_dials_and_reports_passes() -> None:
    assert bridge_problems(BRIDGE) == []


@pytest.mark.parametrize(("old", "new", "word"), [
    ("${FILTER(-+./0-9:@A-Z_a-z,${IVR_BRIDGE_DIAL})}", "${IVR_BRIDGE_DIAL}", "`&` or `,`"),
    ("-+./0-9:@A-Z_a-z", "-./0-9:@A-Z_a-z", "turns the dial string 'PJSIP/+15145550100@carrier'"),
    ("${IVR_BRIDGE_DIAL}", "${IVR_DIAL}", "does not dial ${IVR_BRIDGE_DIAL}"),
    ("})},30)", "})})", "no timeout"),
    (" same => n,Dial(${FILTER(-+./0-9:@A-Z_a-z,${IVR_BRIDGE_DIAL})},30)\n", "", "dials nothing"),
    ("exten => h,1,", "exten => i,1,", "no h extension"),
    ("UserEvent(KeyboxBridge,", "UserEvent(KeyboxCall,", "no h extension"),
    (",DialStatus: ${DIALSTATUS}", "", "'DialStatus'"),
    ("Attempt: ${IVR_ATTEMPT_ID}", "Attempt : ${IVR_ATTEMPT_ID}", "no 'Attempt'"),
    ("Job: ${IVR_JOB_ID}", "Job: ${IVR_ATTEMPT_ID}", "'Job'"),
])
def test_a_bridge_that_does_not_dial_or_report_fails(old: str, new: str, word: str) -> None:
    assert old in BRIDGE
    one(bridge_problems(BRIDGE.replace(old, new, 1)), word)


def test_a_missing_bridge_context_fails() -> None:
    one(bridge_problems("[c]\nexten => s,1,Hangup()\n"), "not defined")
    problems = bridge_problems(BRIDGE.replace("exten => s,1,NoOp()\n same => n,", "exten => 1,1,"))
    assert any("no s,1" in p for p in problems), problems


# -- outbound: the table of contexts, the dial template -------------------------------------------

TABLE = """; | context          | who enters it        | file |
; |------------------|----------------------|------|
; | c                | phones               | x    |
; | d                | the service          | y    |
[c]
exten => s,1,Hangup()
[d]
exten => s,1,Hangup()
"""


def test_a_table_of_contexts_that_differs_from_the_dialplan_fails() -> None:
    assert astconf.check_context_table(TABLE, plan(TABLE)) == []
    one(astconf.check_context_table(TABLE.replace("; | d ", "; |   "), plan(TABLE)), "'d'")
    one(astconf.check_context_table(TABLE + "; | gone | x | y |\n", plan(TABLE)), "'gone'")


DIAL_PLAN = "[keybox-internal]\nexten => 201,1,Dial(PJSIP/a1,30)\nexten => _X.,1,Hangup()\n"


@pytest.mark.parametrize("template", [
    "Local/{number}@keybox-internal", "Local/{number}@keybox-internal/n", "PJSIP/{number}@a1",
    "PJSIP/a1/sip:{number}@example.com",
])
def test_a_dial_template_reaching_a_context_or_endpoint_passes(template: str) -> None:
    pjsip = astconf.parse(PJSIP_GOOD, "pjsip.conf")
    assert astconf.check_dial_template(template, plan(DIAL_PLAN), pjsip) == []


@pytest.mark.parametrize(("template", "word"), [
    ("Local/{number}@keybox-intern", "'keybox-intern' is not defined"),
    ("Local/{number}", "not Local/<extension>@<context>"),
    ("PJSIP/{number}@carrier", "no PJSIP endpoint 'carrier'"),
    ("PJSIP/{number}", "the endpoint is the number"),
    ("SIP/{number}@a1", "not a Local/ or PJSIP/"),
    ("PJSIP/201@a1", "{number} once"),
])
def test_a_dial_template_reaching_nothing_fails(template: str, word: str) -> None:
    one(astconf.check_dial_template(template, plan(DIAL_PLAN), astconf.parse(PJSIP_GOOD, "pjsip.conf")), word)


# -- outbound: the AMI user and the service's AMI settings ----------------------------------------

AMI_USER = ("[general]\nport = 5038\n[keybox]\nsecret = ${AMI_SECRET}\n"
            "read = call,user\nwrite = call,originate,reporting\n")
ACTIONS = ("Login", "Ping", "Originate", "CoreShowChannels")
EVENTS = ("OriginateResponse", "Newstate", "Hangup", "UserEvent")


def ami_user_problems(text: str, actions: tuple[str, ...] = ACTIONS) -> list[str]:
    return astconf.check_ami_user(astconf.parse(text, "manager.conf"), "keybox", actions, EVENTS)


def test_an_ami_user_that_may_do_what_the_service_does_passes() -> None:
    assert ami_user_problems(AMI_USER) == []
    assert ami_user_problems(AMI_USER.replace("write = call,originate,reporting", "write = originate, Reporting")) == []


@pytest.mark.parametrize(("old", "new", "word"), [
    ("read = call,user", "read = call", "UserEvent (read needs user)"),
    ("read = call,user", "read = user", "OriginateResponse"),
    ("call,originate,reporting", "call,reporting", "may not run Originate"),
    ("call,originate,reporting", "call,originate", "may not run CoreShowChannels"),
    ("call,originate,reporting", "call,originate,system", "writes system"),
    ("call,originate,reporting", "originate,reporting,command", "writes command"),
    ("call,originate,reporting", "all", "writes all"),
    ("[keybox]", "[service]", "no AMI user [keybox]"),
])
def test_an_ami_user_that_may_not_or_may_too_much_fails(old: str, new: str, word: str) -> None:
    assert old in AMI_USER
    one(ami_user_problems(AMI_USER.replace(old, new)), word)


def test_an_ami_action_of_unknown_class_fails() -> None:
    one(ami_user_problems(AMI_USER, (*ACTIONS, "Redirect")), "Redirect")


SERVICE_AMI = {"IVR_AMI_HOST": "${IVR_AMI_HOST:-asterisk}", "IVR_AMI_USERNAME": "keybox",
               "IVR_AMI_SECRET": "${AMI_SECRET:-}"}


def ami_client_problems(**changes: str) -> list[str]:
    return astconf.check_ami_client(SERVICE_AMI | changes, astconf.parse(AMI_USER, "manager.conf"),
                                    {"asterisk", "172.28.73.10"})


def test_the_services_ami_settings_pass() -> None:
    assert ami_client_problems() == []
    assert ami_client_problems(IVR_AMI_HOST="172.28.73.10", IVR_AMI_PORT="5038", IVR_AMI_SECRET="${AMI_SECRET}") == []
    assert astconf.compose_value("${IVR_AMI_HOST:-asterisk}", {"IVR_AMI_HOST": "asterisk-sim"}) == "asterisk-sim"


@pytest.mark.parametrize(("changes", "word"), [
    ({"IVR_AMI_HOST": "${IVR_AMI_HOST:-asterisk-sim}"}, "IVR_AMI_HOST is 'asterisk-sim'"),
    ({"IVR_AMI_HOST": "ivr"}, "IVR_AMI_HOST"),
    ({"IVR_AMI_PORT": "5039"}, "IVR_AMI_PORT"),
    ({"IVR_AMI_USERNAME": "admin"}, "'admin'"),
    ({"IVR_AMI_SECRET": "correct-horse-battery"}, "not ${NAME}"),
    ({"IVR_AMI_SECRET": "${ARI_PASSWORD:-}"}, "ARI_PASSWORD"),
])
def test_service_ami_settings_that_miss_the_ami_fail(changes: dict[str, str], word: str) -> None:
    one(ami_client_problems(**changes), word)
