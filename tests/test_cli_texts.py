"""`ivr sms`, `ivr netcode` and their sandboxes' commands, against the Kimoby and Codelocks
sandboxes on loopback.

Each sandbox serves from a thread of its own (its own event loop) while the command runs in the
test's, as `ivr` does in its process: each case asserts the lines printed, the exit code, what
the sandbox was asked, and that no secret shows.
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from click.testing import CliRunner, Result
from support.threaded import Threaded, logging_restored

from ivr.backends.codelocks import load_locks
from ivr.backends.codelocks.sandbox import SAMPLE_LOCKS_FILE, CodelocksSandboxServer, sandbox_netcode
from ivr.backends.codelocks.sandbox import SANDBOX_API_KEY as CODELOCKS_KEY
from ivr.backends.kimoby import SubscriptionChange
from ivr.backends.kimoby.sandbox import SANDBOX_API_KEY, SANDBOX_API_SECRET, KimobySandboxServer, customer_id_for
from ivr.cli import cli
from ivr.store import SqliteStore

T = TypeVar("T")
CODE = "4384341"
WEBHOOK_URL = "https://ivr.example.com/webhooks/kimoby"
SECRETS = (SANDBOX_API_SECRET, CODELOCKS_KEY)
LOCKS = load_locks(SAMPLE_LOCKS_FILE)
__all__ = ["logging_restored"]  # an autouse fixture, used by being here


@pytest.fixture
def kimoby() -> Iterator[KimobySandboxServer]:
    server = KimobySandboxServer()
    served = Threaded(server)
    try:
        yield server
    finally:
        served.close()


@pytest.fixture
def codelocks() -> Iterator[CodelocksSandboxServer]:
    server = CodelocksSandboxServer()
    served = Threaded(server)
    try:
        yield server
    finally:
        served.close()


def kimoby_env(kimoby: KimobySandboxServer, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"IVR_DATA_DIR": str(tmp_path), "IVR_KIMOBY_URL": kimoby.api_url, "IVR_KIMOBY_API_KEY": SANDBOX_API_KEY,
            "IVR_KIMOBY_API_SECRET": SANDBOX_API_SECRET, **extra}


def codelocks_env(codelocks: CodelocksSandboxServer, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"IVR_DATA_DIR": str(tmp_path), "IVR_CODELOCKS_URL": codelocks.url, "IVR_CODELOCKS_API_KEY": CODELOCKS_KEY,
            "IVR_CODELOCKS_LOCKS_FILE": str(SAMPLE_LOCKS_FILE), **extra}


def ivr(environment: dict[str, str], *args: str) -> Result:
    result = CliRunner().invoke(cli, list(args), env=environment)
    for secret in SECRETS:
        assert secret not in result.output and secret not in result.stderr, "a secret is never printed"
    assert "Traceback" not in result.output + result.stderr
    return result


def only_line(text: str) -> str:
    [line] = text.splitlines()
    return line


# -- ivr sms send ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "language", "words"), [
    ("update", None, "Your update code is"),
    ("cbs", "fr", "Votre code d'appel avant visite est"),
    ("netcode", "es", "Su NetCode es"),
])
def test_sms_send_texts_the_code_worded_as_the_flow_words_it(
        kimoby: KimobySandboxServer, tmp_path: Path, kind: str, language: str | None, words: str) -> None:
    chosen = ["--language", language] if language else []
    result = ivr(kimoby_env(kimoby, tmp_path, IVR_LANGUAGES="en,fr,es"), "sms", "send", "--key-number", "123456",
                 "--code", CODE, "--kind", kind, *chosen)
    assert result.exit_code == 0, result.output
    [sent] = kimoby.sandbox.messages.values()
    assert sent["body"] == f"{words} {CODE}."
    assert sent["customer_id"] == customer_id_for("123456")
    assert only_line(result.stdout) == (f"text message {sent['id']} (queued) to Kimoby customer reference 123456: "
                                        f"{kind} code *****41")
    assert CODE not in result.output and words not in result.output


def test_sms_send_uses_the_reference_template(kimoby: KimobySandboxServer, tmp_path: Path) -> None:
    result = ivr(kimoby_env(kimoby, tmp_path, IVR_KIMOBY_CUSTOMER_REFERENCE="KH{key_number}"), "sms", "send",
                 "--key-number", "123456", "--code", CODE)
    assert result.exit_code == 1
    assert only_line(result.stderr) == ("error: no text message to the Kimoby customer of reference 'KH123456': "
                                        "no such customer")
    assert kimoby.sandbox.messages == {}


def test_sms_send_to_an_unsubscribed_key_holder_is_one_line(kimoby: KimobySandboxServer, tmp_path: Path) -> None:
    result = ivr(kimoby_env(kimoby, tmp_path), "sms", "send", "--key-number", "567890", "--code", CODE)
    assert result.exit_code == 1
    assert only_line(result.stderr) == ("error: no text message to the Kimoby customer of reference '567890': "
                                        "unsubscribed")
    assert result.stdout == "" and kimoby.sandbox.messages == {}


def test_sms_send_heeds_the_unsubscribes_the_service_recorded(kimoby: KimobySandboxServer, tmp_path: Path) -> None:
    async def unsubscribed() -> None:
        store = await SqliteStore.open(tmp_path / "calls.db")
        try:
            await store.on_text_event(SubscriptionChange("e1", customer_id_for("123456"), "123456", True, None))
        finally:
            await store.close()

    asyncio.run(unsubscribed())
    result = ivr(kimoby_env(kimoby, tmp_path), "sms", "send", "--key-number", "123456", "--code", CODE)
    assert result.exit_code == 1
    assert only_line(result.stderr).endswith("'123456': unsubscribed (our records)")
    assert kimoby.sandbox.messages == {}


@pytest.mark.parametrize(("unset", "named"), [
    ("IVR_KIMOBY_URL", "error: IVR_KIMOBY_URL is not set: no Kimoby to ask"),
    ("IVR_KIMOBY_API_SECRET", "error: IVR_KIMOBY_API_SECRET is not valid: expected the Kimoby API secret, required "
                              "with IVR_KIMOBY_URL"),
])
def test_sms_without_its_settings_exits_2(kimoby: KimobySandboxServer, tmp_path: Path, unset: str, named: str) -> None:
    environment = {k: v for k, v in kimoby_env(kimoby, tmp_path).items() if k != unset}
    for command in (["send", "--key-number", "123456", "--code", CODE], ["webhooks"]):
        result = ivr(environment, "sms", *command)
        assert result.exit_code == 2
        assert only_line(result.stderr) == named and result.stdout == ""
    assert sum(kimoby.sandbox.requests.values()) == 0


@pytest.mark.parametrize(("option", "value", "named"), [
    ("--code", "123", "error: --code: 4 to 12 digits"),
    ("--code", "12345678901234", "error: --code: 4 to 12 digits"),
    ("--code", "12a4", "error: --code: 4 to 12 digits"),
    ("--language", "de", "error: --language 'de': one of IVR_LANGUAGES (en)"),
])
def test_sms_send_refuses_a_bad_option(kimoby: KimobySandboxServer, tmp_path: Path, option: str, value: str,
                                       named: str) -> None:
    args = {"--code": CODE, option: value}
    result = ivr(kimoby_env(kimoby, tmp_path), "sms", "send", "--key-number", "123456",
                 *(word for pair in args.items() for word in pair))
    assert result.exit_code == 2
    assert only_line(result.stderr) == named
    assert sum(kimoby.sandbox.requests.values()) == 0


def test_sms_with_wrong_credentials_exits_1_in_one_line(kimoby: KimobySandboxServer, tmp_path: Path) -> None:
    result = ivr(kimoby_env(kimoby, tmp_path, IVR_KIMOBY_API_SECRET="not-the-secret"), "sms", "send",
                 "--key-number", "123456", "--code", CODE)
    assert result.exit_code == 1
    assert only_line(result.stderr) == ("error: Kimoby refused the API key and secret (HTTP 401): check "
                                        "IVR_KIMOBY_API_KEY / IVR_KIMOBY_API_SECRET")
    assert "not-the-secret" not in result.output + result.stderr


def test_sms_with_kimoby_down_is_one_line(kimoby: KimobySandboxServer, tmp_path: Path) -> None:
    kimoby.sandbox.knobs.down = True
    result = ivr(kimoby_env(kimoby, tmp_path), "sms", "send", "--key-number", "123456", "--code", CODE)
    assert result.exit_code == 1
    assert only_line(result.stderr).startswith("error: Kimoby GET /customers")


# -- ivr sms webhooks -----------------------------------------------------------------------------


def test_webhooks_list_register_replace_delete(kimoby: KimobySandboxServer, tmp_path: Path) -> None:
    env = kimoby_env(kimoby, tmp_path, IVR_KIMOBY_WEBHOOK_URL=WEBHOOK_URL)  # no key yet: it is what --register makes
    webhooks = kimoby.sandbox.webhooks

    empty = ivr(env, "sms", "webhooks")
    assert empty.exit_code == 0, empty.output
    assert only_line(empty.stdout) == "no webhooks: `ivr sms webhooks --register` registers IVR_KIMOBY_WEBHOOK_URL"

    registered = ivr(env, "sms", "webhooks", "--register")
    assert registered.exit_code == 0, registered.output
    [first] = webhooks.values()
    assert first["url"] == WEBHOOK_URL
    assert registered.stdout.splitlines() == [
        f"registered webhook {first['id']} for {WEBHOOK_URL}",
        "Its key, shown this once: set it in the service's settings (then restart it):",
        f"IVR_KIMOBY_WEBHOOK_KEY={first['authentication_key']}",
    ]

    other = ivr(env, "sms", "webhooks", "--register", "https://elsewhere.example/hook")
    assert other.exit_code == 0, other.output
    second = next(w for w in webhooks.values() if w["id"] != first["id"])
    listed = ivr(env, "sms", "webhooks")
    assert listed.exit_code == 0
    assert listed.stdout.splitlines() == [f"{first['id']}  {WEBHOOK_URL}  (IVR_KIMOBY_WEBHOOK_URL)",
                                          f"{second['id']}  https://elsewhere.example/hook"]

    again = ivr(env, "sms", "webhooks", "--register")
    assert again.exit_code == 1
    assert only_line(again.stderr) == (f"error: webhook {first['id']} has that URL already: --replace deletes it and "
                                       "registers the URL again, with a new key")

    replaced = ivr(env, "sms", "webhooks", "--register", "--replace")
    assert replaced.exit_code == 0, replaced.output
    third = next(w for w in webhooks.values() if w["id"] not in (first["id"], second["id"]))
    assert first["id"] not in webhooks and third["url"] == WEBHOOK_URL
    assert replaced.stdout.splitlines()[:2] == [f"deleted webhook {first['id']}",
                                                f"registered webhook {third['id']} for {WEBHOOK_URL}"]
    assert replaced.stdout.splitlines()[-1] == f"IVR_KIMOBY_WEBHOOK_KEY={third['authentication_key']}"

    deleted = ivr(env, "sms", "webhooks", "--delete", second["id"])
    assert deleted.exit_code == 0 and only_line(deleted.stdout) == f"deleted webhook {second['id']}"
    assert list(webhooks) == [third["id"]]
    unknown = ivr(env, "sms", "webhooks", "--delete", second["id"])
    assert unknown.exit_code == 1 and only_line(unknown.stderr) == f"error: Kimoby has no webhook '{second['id']}'"

    for result in (empty, listed, again, deleted, unknown):  # a key shows only when it is made
        assert not any(w["authentication_key"] in result.output for w in (first, second, third))


@pytest.mark.parametrize(("args", "named"), [
    (["--register", "x", "--delete", "WH1"], "error: --register and --delete: one at a time"),
    (["--replace"], "error: --replace goes with --register"),
    (["--register"], "error: --register: no URL given, and IVR_KIMOBY_WEBHOOK_URL is not set"),
    (["--delete", "../x"], "error: --delete: a Kimoby webhook id is 1 to 128 letters, digits, '-' or '_'"),
])
def test_webhooks_refuses_bad_options(kimoby: KimobySandboxServer, tmp_path: Path, args: list[str],
                                      named: str) -> None:
    result = ivr(kimoby_env(kimoby, tmp_path), "sms", "webhooks", *args)
    assert result.exit_code == 2
    assert only_line(result.stderr) == named
    assert kimoby.sandbox.webhooks == {}


# -- ivr netcode ----------------------------------------------------------------------------------

NETCODE_LINES = re.compile(
    r"lock (?P<number>\d+) \((?P<zone>[\w/]+)\): NetCode (?P<code>\d+)\n"
    r"  starts (?P<start>[\d-]+ [\d:]+), lasts (?P<length>[\w ]+); the one handed out until (?P<until>[\d-]+ [\d:]+) "
    r"\(the lock's time\)\n"
    r"  Codelocks NetCode calls this month: (?P<used>\d+)/(?P<budget>\d+)\n")


def test_netcode_prints_the_locks_netcode_and_spends_one_call_per_period(
        codelocks: CodelocksSandboxServer, tmp_path: Path) -> None:
    lock = LOCKS.find("4711")
    assert lock is not None
    first = ivr(codelocks_env(codelocks, tmp_path), "netcode", "--lock", "4711")
    second = ivr(codelocks_env(codelocks, tmp_path), "netcode", "--lock", "4711")

    assert first.exit_code == 0, first.output
    shown = NETCODE_LINES.fullmatch(first.stdout)
    assert shown is not None, first.stdout
    assert (shown["number"], shown["zone"], shown["length"]) == ("4711", "Europe/London", "5 hours")
    assert shown["code"] == sandbox_netcode(lock.id, lock.model, lock.identifier, shown["start"], lock.duration)
    start = datetime.strptime(shown["start"], "%Y-%m-%d %H:%M")
    assert start.minute == 0 and datetime.strptime(shown["until"], "%Y-%m-%d %H:%M") == start + timedelta(hours=1)
    assert (shown["used"], shown["budget"]) == ("1", "1000")
    assert second.exit_code == 0, second.output
    again = NETCODE_LINES.fullmatch(second.stdout)
    assert again is not None
    # One Codelocks request per period: the second run, in the same hour, is answered from the store.
    assert sum(codelocks.sandbox.netcode_calls.values()) == len({shown["start"], again["start"]})
    if again["start"] == shown["start"]:
        assert again["code"] == shown["code"] and again["used"] == "1"


def test_netcode_with_a_duration_of_days_starts_at_local_midnight(codelocks: CodelocksSandboxServer,
                                                                  tmp_path: Path) -> None:
    result = ivr(codelocks_env(codelocks, tmp_path), "netcode", "--lock", "4713", "--duration", "13")
    assert result.exit_code == 0, result.output
    shown = NETCODE_LINES.fullmatch(result.stdout)
    assert shown is not None and shown["start"].endswith(" 00:00") and shown["length"] == "2 days"
    lock = LOCKS.find("4713")
    assert lock is not None
    assert shown["code"] == sandbox_netcode(lock.id, lock.model, lock.identifier, shown["start"], 13)


@pytest.mark.parametrize(("args", "named"), [
    (["--lock", "9999"], f"error: --lock '9999': no such lock in IVR_CODELOCKS_LOCKS_FILE {SAMPLE_LOCKS_FILE}"),
    (["--lock", "4714", "--duration", "14"], "error: --duration 14 (3 days) is not a duration of lock 4714's model "
                                             "KL1060G3"),
])
def test_netcode_refuses_an_unknown_lock_or_duration(codelocks: CodelocksSandboxServer, tmp_path: Path,
                                                     args: list[str], named: str) -> None:
    result = ivr(codelocks_env(codelocks, tmp_path), "netcode", *args)
    assert result.exit_code == 2
    assert only_line(result.stderr) == named and result.stdout == ""
    assert sum(codelocks.sandbox.requests.values()) == 0


def test_netcode_past_the_monthly_budget_sends_nothing(codelocks: CodelocksSandboxServer, tmp_path: Path) -> None:
    async def spend_the_budget() -> None:
        store = await SqliteStore.open(tmp_path / "calls.db")
        try:  # this month's, and the next one's should the command run past midnight UTC
            for at in (datetime.now(UTC), datetime.now(UTC) + timedelta(minutes=5)):
                await store.reserve(at.strftime("%Y-%m"), 1)
        finally:
            await store.close()

    asyncio.run(spend_the_budget())
    result = ivr(codelocks_env(codelocks, tmp_path, IVR_CODELOCKS_MONTHLY_BUDGET="1"), "netcode", "--lock", "4711")
    assert result.exit_code == 1
    assert only_line(result.stderr) == "error: the monthly budget of 1 Codelocks NetCode calls is used up"
    assert result.stdout == "" and sum(codelocks.sandbox.requests.values()) == 0


def test_netcode_when_codelocks_quota_is_used_up(codelocks: CodelocksSandboxServer, tmp_path: Path) -> None:
    codelocks.sandbox.knobs.netcode_remaining = 0
    result = ivr(codelocks_env(codelocks, tmp_path), "netcode", "--lock", "4711")
    assert result.exit_code == 1
    assert only_line(result.stderr) == "error: Codelocks netcode answered HTTP 403: Limit Exceeded"
    assert result.stdout == "" and sum(codelocks.sandbox.netcode_calls.values()) == 0


def test_netcode_with_a_refused_key_exits_1(codelocks: CodelocksSandboxServer, tmp_path: Path) -> None:
    result = ivr(codelocks_env(codelocks, tmp_path, IVR_CODELOCKS_API_KEY="not-the-key"), "netcode", "--lock", "4711")
    assert result.exit_code == 1
    assert "IVR_CODELOCKS_API_KEY" in only_line(result.stderr) and "not-the-key" not in result.stderr


def test_netcode_without_codelocks_exits_2(tmp_path: Path) -> None:
    result = ivr({"IVR_DATA_DIR": str(tmp_path)}, "netcode", "--lock", "4711")
    assert result.exit_code == 2
    assert only_line(result.stderr) == "error: IVR_CODELOCKS_URL is not set: no Codelocks to ask"


@pytest.mark.parametrize("command", [["netcode", "--lock", "4711"],
                                     ["sms", "send", "--key-number", "123456", "--code", CODE], ["sms", "webhooks"]])
def test_an_embedded_sandbox_is_not_asked_from_another_process(tmp_path: Path, command: list[str]) -> None:
    environment = {"IVR_DATA_DIR": str(tmp_path), "IVR_KIMOBY_URL": "sandbox", "IVR_CODELOCKS_URL": "sandbox"}
    result = ivr(environment, *command)
    assert result.exit_code == 2
    line = only_line(result.stderr)
    assert "=sandbox is the sandbox inside `ivr serve`" in line and "-sandbox` and point" in line


# -- the sandboxes' commands, as QA runs them -----------------------------------------------------


def test_the_sandbox_commands_serve_what_the_commands_use(tmp_path: Path) -> None:
    """`ivr kimoby-sandbox` and `ivr codelocks-sandbox` on free ports, each its own process: the
    banner names the URL (and Codelocks' lock file) to set, and commands work against them."""
    started = [subprocess.Popen([sys.executable, "-m", "ivr", name, "--port", "0"], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
               for name in ("kimoby-sandbox", "codelocks-sandbox")]
    try:
        kimoby_process, codelocks_process = started
        assert kimoby_process.stdout is not None and codelocks_process.stdout is not None
        kimoby_banner = [kimoby_process.stdout.readline() for _ in range(9)]
        codelocks_banner = [codelocks_process.stdout.readline() for _ in range(2)]
        assert re.fullmatch(r"Kimoby sandbox on http://127\.0\.0\.1:\d+/v1 \(IVR_KIMOBY_URL; API key "
                            rf"'{SANDBOX_API_KEY}'\)\. Ctrl-C stops it\.\n", kimoby_banner[0])
        assert kimoby_banner[1:3] == ["Customers:\n", "  reference 123456  texts are delivered\n"]
        assert re.fullmatch(r"Codelocks sandbox on http://127\.0\.0\.1:\d+ \(IVR_CODELOCKS_URL\)\. Ctrl-C stops it\.\n",
                            codelocks_banner[0])
        assert codelocks_banner[1] == f"Its locks: IVR_CODELOCKS_LOCKS_FILE={SAMPLE_LOCKS_FILE}\n"
        env = {"IVR_DATA_DIR": str(tmp_path), "IVR_KIMOBY_URL": kimoby_banner[0].split()[3],
               "IVR_KIMOBY_API_KEY": SANDBOX_API_KEY, "IVR_KIMOBY_API_SECRET": SANDBOX_API_SECRET,
               "IVR_CODELOCKS_URL": codelocks_banner[0].split()[3], "IVR_CODELOCKS_API_KEY": CODELOCKS_KEY,
               "IVR_CODELOCKS_LOCKS_FILE": codelocks_banner[1].strip().partition("=")[2]}
        sent = ivr(env, "sms", "send", "--key-number", "234567", "--code", CODE)
        issued = ivr(env, "netcode", "--lock", "4712")
    finally:
        for process in started:
            process.send_signal(signal.SIGTERM)
        stopped = [process.wait(10) for process in started]
    assert sent.exit_code == 0 and sent.stdout.startswith("text message "), sent.output
    assert issued.exit_code == 0 and issued.stdout.startswith("lock 4712 (America/Toronto): NetCode "), issued.output
    assert stopped == [0, 0]
