"""The `ivr` command. Thin: parse options, call the package, print the outcome."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from enum import Enum
from typing import Any, NoReturn, TypeVar

import click

from ivr.backends.kimvoice import METHODS, CodeType, Method, OperationalMode, open_kimvoice
from ivr.errors import InvalidParameterError, IvrError, SettingsError
from ivr.logging import configure_logging
from ivr.settings import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, SANDBOX_URL, Settings, load_settings

T = TypeVar("T")

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _settings(**overrides: Any) -> Settings:
    settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    configure_logging(settings.log_format, settings.log_level)
    return settings


def _run(main: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., T]:
    """Run an async command; an `IvrError` becomes one line on stderr and a non-zero exit."""

    @functools.wraps(main)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return asyncio.run(main(*args, **kwargs))
        except (InvalidParameterError, SettingsError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_USAGE)
        except IvrError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_FAILURE)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="keybox-ivr")
def cli() -> None:
    """keybox-ivr: the phone line key holders call for update codes and lockbox codes.

    Settings come from IVR_* environment variables (or a .env file); with IVR_KIMVOICE_URL
    unset, commands use an embedded KimVoice sandbox.
    """


# -- ivr sandbox ------------------------------------------------------------------------


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8081, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any).")
@click.option("--mode", type=click.Choice(["Normal", "DisasterRecovery"]), help="HealthCheck's operational mode.")
@click.option("--latency", type=click.FloatRange(0, 60), help="Seconds added before every answer.")
@click.option("--failure-rate", type=click.FloatRange(0, 1), help="Share of requests answered 503 (ApiError 9001).")
@click.option("--token-lifetime", type=click.FloatRange(min=1), help="Seconds a new token lives (default 48 h).")
@_run
async def sandbox(
    host: str, port: int, mode: str | None, latency: float | None, failure_rate: float | None,
    token_lifetime: float | None,
) -> None:
    """Run the KimVoice sandbox: the whole wire contract over seeded test keys.

    Fault knobs can also be changed while it runs:
    curl -X PATCH http://HOST:PORT/sandbox/knobs -d '{"latency": 3}'
    (also GET /sandbox/knobs, GET /sandbox/stats, POST /sandbox/reset, POST /sandbox/revoke-tokens).
    """
    from ivr.backends.kimvoice.sandbox import Knobs, Sandbox, SandboxServer, seed_key_lines

    settings = _settings(
        sandbox_mode=mode, sandbox_latency=latency, sandbox_failure_rate=failure_rate,
        sandbox_token_lifetime=token_lifetime,
    )
    knobs = Knobs(
        operational_mode=OperationalMode(settings.sandbox_mode), latency=settings.sandbox_latency,
        failure_rate=settings.sandbox_failure_rate, token_lifetime=settings.sandbox_token_lifetime,
    )
    server = SandboxServer(Sandbox(knobs), host, port, log_requests=True)
    try:
        url = await server.start()
    except OSError as exc:
        raise IvrError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    click.echo(f"KimVoice sandbox on {url}/api/V1/  (client id {settings.kimvoice_client_id!r})")
    click.echo("Test keys:")
    for line in seed_key_lines():
        click.echo(f"  {line}")
    click.echo("Ctrl-C stops it.", nl=True)
    sys.stdout.flush()
    try:
        await _until_signal(server.wait())
    finally:
        await server.stop()


# -- ivr kimvoice ----------------------------------------------------------------------


@cli.group()
@click.option("--url", help="KimVoice base URL (default: IVR_KIMVOICE_URL; unset: an embedded sandbox).")
@click.option("-v", "--verbose", is_flag=True, help="Log every request on stderr (else warnings only).")
@click.pass_context
def kimvoice(ctx: click.Context, url: str | None, verbose: bool) -> None:
    """Call one KimVoice method and print its answer as JSON (QA's way to poke a backend).

    stdout holds the answer only; logs go to stderr, warnings and errors unless -v.

    \b
    Example:
      ivr kimvoice get-key-holders --key-number 123456 --pin 2580
    """
    ctx.obj = {"url": url, "log_level": None if verbose or _verbose_logs() else "warning"}


def _kebab(name: str) -> str:
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")


def _option_for(name: str, annotation: Any, description: str | None) -> click.Option:
    click_type: click.ParamType[Any] = click.STRING
    if annotation is int:
        click_type = click.INT
    elif isinstance(annotation, type) and issubclass(annotation, Enum):
        click_type = click.Choice([m.value for m in annotation], case_sensitive=False)
    return click.Option([f"--{name.replace('_', '-')}"], type=click_type, required=True, help=description)


def _method_command(method: Method[Any]) -> click.Command:
    validates_first = method.attribute in ("get_update_code", "get_cbs_code")

    @click.pass_context
    def command(ctx: click.Context, /, **values: Any) -> None:
        _run(_call_method)(ctx.obj, method, values, validates_first)

    params: list[click.Parameter] = [
        _option_for(name, info.annotation, info.description) for name, info in method.params.model_fields.items()
    ]
    if method.attribute == "get_cbs_code":
        params.append(click.Option(["--pod-number"], type=int, default=1, show_default=True,
                                   help="Pod named in the ValidateKeyHolder call made first."))
    if validates_first:
        params.append(click.Option(["--validate/--no-validate"], default=True, show_default=True,
                                   help="Call ValidateKeyHolder first, as KimVoice requires (2004 otherwise)."))
    return click.Command(
        _kebab(method.name), callback=command, params=params,
        help=f"Call {method.name} (GET api/V1/{method.path}).",
    )


async def _call_method(
    options: dict[str, Any], method: Method[Any], values: dict[str, Any], validates_first: bool
) -> None:
    settings = _settings(kimvoice_url=options["url"], log_level=options["log_level"])
    validate = values.pop("validate", False)
    # GetCbsCode takes no pod: its --pod-number (default 1) is for the ValidateKeyHolder call alone.
    cbs_pod: int = values.pop("pod_number") if method.attribute == "get_cbs_code" else 0
    async with open_kimvoice(settings) as client:
        if validates_first and validate:
            # Both methods that validate first take a primary member; GetUpdateCode also a pod.
            member: int = values.get("update_member", values["primary_member"])
            pod_number: int = cbs_pod if method.attribute == "get_cbs_code" else values["pod_number"]
            code_type = CodeType.UPDATE if method.attribute == "get_update_code" else CodeType.CBS
            await client.validate_key_holder(values["key_number"], member, pod_number, code_type)
        result = await getattr(client, method.attribute)(**values)
    click.echo(json.dumps(result.to_wire(), indent=2, ensure_ascii=False))


@kimvoice.command("log-on")
@click.pass_context
def log_on(ctx: click.Context) -> None:
    """Log on (POST api/V1/Token/LogOn) and show the token's lifetime; the token itself is masked."""
    _run(_log_on)(ctx.obj)


async def _log_on(options: dict[str, Any]) -> None:
    async with open_kimvoice(_settings(kimvoice_url=options["url"], log_level=options["log_level"])) as client:
        token = await client.log_on()

    def iso(t: float | None) -> str | None:
        return None if t is None else datetime.fromtimestamp(t, UTC).isoformat()

    out = {"token": token.masked(), "notBefore": iso(token.not_before), "expires": iso(token.expires)}
    click.echo(json.dumps(out, indent=2, ensure_ascii=False))


for _method in METHODS:
    kimvoice.add_command(_method_command(_method))


# -- the service -------------------------------------------------------------------------


@cli.command()
@_run
async def serve() -> None:
    """Run the service: FastAGI on IVR_AGI_HOST:IVR_AGI_PORT, /healthz and /metrics over HTTP.

    With IVR_KIMVOICE_URL unset it uses an embedded KimVoice sandbox, and says so; it refuses to
    when IVR_AGI_HOST or IVR_HTTP_HOST listen beyond loopback, unless IVR_KIMVOICE_URL=sandbox.
    SIGTERM drains: no new calls, calls in progress finish (within IVR_DRAIN_SECONDS).
    """
    from ivr.service import serve as run_service

    try:
        await run_service(_settings())
    except OSError as exc:
        raise IvrError(f"cannot listen: {exc.strerror or exc}") from None


@cli.command("agi")
@click.argument("route", default="keybox")
@_run
async def classic_agi(route: str) -> None:
    """Classic AGI: Asterisk runs this per call, e.g. AGI(ivr-agi,keybox), over stdin/stdout."""
    from ivr.flow.runner import run_call
    from ivr.service import open_services
    from ivr.transports.agi import run_classic_agi

    async with open_services(_settings()) as services:
        await run_classic_agi(lambda call: run_call(call, services), route)


@cli.command()
@click.argument("call_id", required=False)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000), help="How many calls.")
@_run
async def calls(call_id: str | None, limit: int) -> None:
    """List recent calls, or show one call's steps and backend requests."""
    from ivr.store import SqliteStore

    settings = _settings()
    store = await SqliteStore.open(settings.data_dir / "calls.db")
    try:
        records = await store.recent(limit) if call_id is None else await store.all_of(call_id)
    finally:
        await store.close()
    if call_id is None:
        click.echo(_CALLS_HEADER if records else f"no calls yet in {settings.data_dir / 'calls.db'}")
        for record in records:
            click.echo(_call_line(record))
        return
    if not records:
        raise IvrError(f"no call {_printable(call_id)!r} in {settings.data_dir / 'calls.db'}")
    for record in records:
        click.echo(_call_line(record))
        if record.detail:
            click.echo(f"  detail: {_printable(record.detail)}")
        if record.codes:
            click.echo(f"  codes read: {', '.join(record.codes)}")
        for step in record.steps:
            click.echo(f"  {step.at:8.3f}s  {step.name:<28} {'' if step.ms is None else f'{step.ms:.0f} ms'}")
        for backend in record.backend:
            click.echo(f"  {backend.at:8.3f}s  backend {backend.method:<20} {backend.ms:.0f} ms  {backend.result}")


@cli.group(invoke_without_command=True)
@click.pass_context
def lockouts(ctx: click.Context) -> None:
    """The locks in force: key numbers and calling numbers refused after too many wrong PINs.

    A key number shows masked (it may hold a PIN typed without #); lift a lock with
    `ivr lockouts clear 123456` (a key or calling number, or `withheld`).
    """
    if ctx.invoked_subcommand is None:
        _lockouts_list()


@_run
async def _lockouts_list() -> None:
    from ivr.store import SqliteStore

    settings = _settings()
    store = await SqliteStore.open(settings.data_dir / "calls.db")
    try:
        locks = await store.locks()
    finally:
        await store.close()
    if not locks:
        click.echo("no locks in force")
        return
    click.echo(f"{'kind':<9} {'subject':<24} until (UTC)")
    for lock in locks:
        until = datetime.fromtimestamp(lock.until, UTC).strftime("%Y-%m-%d %H:%M:%S")
        click.echo(f"{lock.kind:<9} {_printable(lock.label):<24} {until}")


@lockouts.command("clear")
@click.argument("subject")
@_run
async def lockouts_clear(subject: str) -> None:
    """Lift the lock on SUBJECT (a key number, a calling number, or `withheld`) and forget its
    wrong guesses. A running service sees it at the subject's next try."""
    from ivr.flow.guard import caller_subject, is_withheld, key_subject
    from ivr.install_key import install_key
    from ivr.store import SqliteStore

    settings = _settings()
    key = install_key(settings.data_dir)
    subject = subject.strip()
    subjects = [caller_subject(key, "" if subject.lower() == "withheld" else subject)]
    if subject.isdecimal() and not is_withheld(subject):
        subjects.append(key_subject(key, subject))
    store = await SqliteStore.open(settings.data_dir / "calls.db")
    try:
        lifted = await store.clear([(s.kind, s.digest) for s in subjects])
    finally:
        await store.close()
    if not lifted:
        click.echo(f"no lock on {_printable(subject)!r}; its wrong guesses are forgotten")
        return
    for lock in lifted:
        click.echo(f"lifted: {lock.kind} {_printable(lock.label)}")


_CALLS_HEADER = f"{'started (UTC)':<19}  {'call id':<24} {'route':<9} {'caller':<16} {'key':<14} {'length':>7}  outcome"


def _printable(text: str) -> str:
    """`text` with control characters escaped: a peer-supplied value must not drive the terminal."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


# -- calls in a terminal --------------------------------------------------------------------

#: What `ivr demo` types on each route (after the language choice, when there is one), and the
#: outcomes that show the call worked.
DEMO_CALLS: dict[str, tuple[str, frozenset[str]]] = {
    "keybox": ("123456#2580#19", frozenset({"update_code_read", "cbs_code_read"})),
    "identify": ("123456#9", frozenset({"identified"})),
}
_SCRIPT_KEYS = frozenset("0123456789*#_!")


def _usage(message: str) -> NoReturn:
    """A bad option: one line and exit 2, as for a bad setting."""
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_USAGE)


def _check_digits(_: click.Context, __: click.Parameter, value: str | None) -> str | None:
    for position, key in enumerate(value or "", 1):
        if key not in _SCRIPT_KEYS and not key.isspace():
            _usage(f"--digits: {key!r} (character {position}) is not a key: use 0-9 * #, "
                   "_ for silence at a question, ! to hang up")
    return value


def _check_address(_: click.Context, __: click.Parameter, value: str | None) -> str | None:
    """host:port as the simulated Asterisk reads it ([v6]:port too; no port: 4573)."""
    if value is None:
        return None
    if value.startswith("["):
        port = value.partition("]")[2].removeprefix(":")
    else:
        port = value.partition(":")[2] if value.count(":") == 1 else ""
    if port and not (port.isdecimal() and 1 <= int(port) <= 65535):
        _usage(f"--agi {value}: the port {port!r} is not a number from 1 to 65535 (host:port, e.g. 127.0.0.1:4573)")
    return value


def _check_route(_: click.Context, __: click.Parameter, value: str) -> str:
    """An unknown route would only be heard as `system-unavailable`: say it here instead."""
    from ivr.flow.runner import ROUTES

    if value.partition("?")[0] not in ROUTES:
        _usage(f"the service does not know route {value!r}: use {', '.join(ROUTES)} (e.g. announce?job=ID)")
    return value


@cli.command("call")
@click.option("--route", default="keybox", show_default=True, callback=_check_route,
              help="keybox, identify or announce (announce?job=ID).")
@click.option("--digits", callback=_check_digits,
              help='Keys the caller types, in order, e.g. "123456#2580#19" (_ = silence, ! = hang up). '
                   "Without it, you type at each question.")
@click.option("--agi", "address", callback=_check_address,
              help="FastAGI address host:port (default: IVR_AGI_HOST:IVR_AGI_PORT).")
@click.option("--language", default="en", show_default=True, help="The channel's language at the start.")
@click.option("--caller-id", default="+15555550100", show_default=True, help="The calling number.")
@click.option("--hangup-on", help="Hang up while this prompt plays (a prompt id, or digits / tts).")
@click.option("--via", type=click.Choice(["agi", "pivot"]), default="agi", show_default=True,
              help="FastAGI, as Asterisk calls; or pivot: Kazoo's pivot requests to the service's HTTP listener.")
@click.option("--url", help="With --via pivot: the service's HTTP base URL (default: IVR_HTTP_HOST:IVR_HTTP_PORT).")
@_run
async def call(route: str, digits: str | None, address: str | None, language: str, caller_id: str,
               hangup_on: str | None, via: str, url: str | None) -> None:
    """Place a call through the simulated Asterisk (or, --via pivot, as Kazoo would) into a
    running service (`ivr serve`)."""
    import httpx

    settings = _settings()
    if via == "pivot":
        address = url or f"http://{settings.http_host}:{settings.http_port}"
        if not settings.kazoo_pivot_secret.get_secret_value():
            _usage("--via pivot: IVR_KAZOO_PIVOT_SECRET is not set, and the service refuses pivot requests without it")
    else:
        address = address or f"{settings.agi_host}:{settings.agi_port}"
    try:
        await _place(settings, address, route, digits, language, caller_id, hangup_on, via=via)
    except (OSError, httpx.TransportError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise IvrError(f"nothing answers on {address} ({why}): start `ivr serve`, or try `ivr demo`") from None


@cli.command()
@click.option("--route", type=click.Choice(list(DEMO_CALLS)), default="keybox", show_default=True,
              help="keybox: an update code; identify: who holds a found key.")
@click.option("--digits", callback=_check_digits,
              help="Keys the caller types (default: the route's demo keys, after 1 for the first language "
                   "when IVR_LANGUAGES has several).")
@_run
async def demo(route: str, digits: str | None) -> None:
    """Play one complete call with nothing running: sandbox, service and caller in this process.

    The caller uses the embedded sandbox's test key 123456 (PIN 2580) and asks for an update code
    (keybox) or who holds the key (identify), then hangs up; the transcript shows what they heard.
    The call runs on a fresh temporary data directory, so earlier calls and locks do not touch it
    and it leaves nothing behind. Exits 1 when the call does not reach its outcome.
    """
    from ivr.service import Service, open_services

    keys, expected = DEMO_CALLS[route]
    with tempfile.TemporaryDirectory(prefix="ivr-demo-") as data_dir:
        settings = _settings(agi_port=0, http_port=0, data_dir=data_dir, kimvoice_url=SANDBOX_URL,
                             kimvoice_client_id=SANDBOX_CLIENT_ID, kimvoice_client_secret=SANDBOX_CLIENT_SECRET,
                             log_level=None if _verbose_logs() else "warning")
        if digits is None:
            digits = ("1" if route == "keybox" and len(settings.languages) > 1 else "") + keys
        async with open_services(settings) as services:
            service = Service(settings, services)
            await service.start()
            try:
                record_id = await _place(settings, f"127.0.0.1:{service.agi.port}", route, digits, "en",
                                         "+15555550100", None)
            finally:
                await service.stop()
            record = await services.records.get(record_id)
    if record is None:
        raise IvrError("the demo call left no record")
    click.echo(f"\nCall record: {_call_line(record)}")
    click.echo(f"  steps: {' > '.join(s.name for s in record.steps)}")
    click.echo(f"  codes read (masked): {', '.join(record.codes) or '-'}")
    outcome = record.outcome.value if record.outcome else "no outcome"
    if outcome not in expected:
        detail = f" ({_printable(record.detail)})" if record.detail else ""
        raise IvrError(f"the demo call ended {outcome}{detail}, not {' or '.join(sorted(expected))}")


def _verbose_logs() -> bool:
    return os.environ.get("IVR_LOG_LEVEL", "").lower() in ("debug", "info")


async def _place(settings: Settings, address: str, route: str, digits: str | None, language: str,
                 caller_id: str, hangup_on: str | None, *, via: str = "agi") -> str:
    from urllib.parse import parse_qsl

    from ivr.catalog import PromptCatalog, default_prompts_dir
    from ivr.sim import InteractiveCaller, ScriptedCaller, SoundLibrary, place_call, place_pivot_call
    from ivr.tts import TtsCache

    catalog = PromptCatalog.load(default_prompts_dir())
    sounds = SoundLibrary(catalog, TtsCache(settings.data_dir / "tts"))
    click.echo(f"Calling {route} on {address} as {caller_id}" + (" (as Kazoo's pivot)" if via == "pivot" else ""))
    timeout = 600 if digits is None else 120
    with contextlib.ExitStack() as keypad:  # a person at a terminal types keys without Enter
        caller = (keypad.enter_context(InteractiveCaller(catalog, language=language)) if digits is None
                  else ScriptedCaller(digits, hangup_on=hangup_on))
        if via == "pivot":
            path, _, query = route.partition("?")
            pivot = await place_pivot_call(
                address, path, caller=caller, sounds=sounds, secret=settings.kazoo_pivot_secret.get_secret_value(),
                query=dict(parse_qsl(query)), caller_id=caller_id, language=language, timeout=timeout)
            transcript, unique_id = pivot.transcript, pivot.call_id
            if pivot.failure:
                click.echo(f"  Kazoo would end the call here: {_printable(pivot.failure)}")
        else:
            result = await place_call(address, route, caller=caller, sounds=sounds, language=language,
                                      caller_id=caller_id, timeout=timeout)
            transcript, unique_id = result.transcript, result.unique_id
    if digits is not None:
        for line in transcript.render(catalog, language):
            click.echo(f"  {line}")
    return unique_id


def _call_line(record: Any) -> str:
    when = datetime.fromtimestamp(record.started, UTC).strftime("%Y-%m-%d %H:%M:%S")
    duration = f"{(record.ended or record.started) - record.started:.1f}s"
    outcome = record.outcome.value if record.outcome else "?"
    key = record.key_shown or "-"
    return (f"{when}  {_printable(record.call_id):<24} {_printable(record.route):<9} "
            f"{_printable(record.caller_id):<16} key {key:<10} {duration:>7}  {outcome}")


# -- the simulated peers of outbound calls -------------------------------------------------


@cli.command("asterisk-sim")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the AMI listens on.")
@click.option("--port", default=5038, show_default=True, type=click.IntRange(0, 65535), help="AMI port (0: any).")
@click.option("--agi", "address", callback=_check_address,
              help="Where answered notices run the announce route (default: IVR_AGI_HOST:IVR_AGI_PORT).")
@click.option("--ring-seconds", default=1.0, show_default=True, type=click.FloatRange(0, 60),
              help="How long each callee rings.")
@_run
async def asterisk_sim(host: str, port: int, address: str | None, ring_seconds: float) -> None:
    """Run the simulated Asterisk's Manager (AMI): the service's outbound calls without a PBX.

    Its one user is IVR_AMI_USERNAME with IVR_AMI_SECRET (default secret: sim-secret). Numbers
    5550101 are busy, 5550102 ring unanswered, 5550103 congested, 5550104 fail; any other
    answers and hears the announce route of the service at --agi. What each callee heard goes
    to IVR_DATA_DIR/sim-callees/<job id>.txt, codes masked.
    """
    from ivr.service import SIM_CALLEES
    from ivr.sim import serve_simulated_ami

    settings = _settings()
    secret = settings.ami_secret.get_secret_value() or "sim-secret"
    agi = address or f"{settings.agi_host}:{settings.agi_port}"
    click.echo(f"Simulated Asterisk Manager on {host}:{port} (user {settings.ami_username!r}); "
               f"answered notices run the announce route on {agi}. Ctrl-C stops it.")
    sys.stdout.flush()
    await _until_signal(serve_simulated_ami(
        host, port, agi_address=agi, username=settings.ami_username, secret=secret,
        heard_dir=settings.data_dir / SIM_CALLEES, ring_seconds=ring_seconds))


@cli.command("ictcore-sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8082, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any).")
@_run
async def ictcore_sandbox(host: str, port: int) -> None:
    """Run an ICTCore sandbox: the API subset the line uses, with ICTCore's quirks.

    Its user is IVR_ICTCORE_USERNAME with IVR_ICTCORE_PASSWORD (default: keybox / sandbox-password).
    Numbers 5550101 end busy, 5550102 unanswered, 5550104 failed; any other completes.
    """
    from ivr.outbound.platforms.ictcore.sandbox import SANDBOX_PASSWORD, serve_ictcore_sandbox

    settings = _settings()
    password = settings.ictcore_password.get_secret_value() or SANDBOX_PASSWORD
    click.echo(f"ICTCore sandbox on http://{host}:{port}/ (user {settings.ictcore_username!r}). Ctrl-C stops it.")
    sys.stdout.flush()
    await _until_signal(serve_ictcore_sandbox(host, port, username=settings.ictcore_username, password=password))


@cli.command("kazoo-sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8083, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any).")
@_run
async def kazoo_sandbox(host: str, port: int) -> None:
    """Run a Kazoo crossbar sandbox: the API subset the line uses (auth, quickcall, devices,
    callflows, CDRs, channels), with its envelopes.

    Its user is IVR_KAZOO_USERNAME / IVR_KAZOO_PASSWORD in IVR_KAZOO_ACCOUNT_NAME, its API key
    IVR_KAZOO_API_KEY (defaults: the sandbox's own). Numbers 5550101 end busy, 5550102
    unanswered, 5550104 failed; any other answers.
    """
    from ivr.outbound.platforms.kazoo.sandbox import (
        SANDBOX_ACCOUNT_NAME,
        SANDBOX_API_KEY,
        SANDBOX_PASSWORD,
        SANDBOX_USERNAME,
        serve_kazoo_sandbox,
    )

    settings = _settings()
    username = settings.kazoo_username or SANDBOX_USERNAME
    click.echo(f"Kazoo sandbox on http://{host}:{port}/v2/ (user {username!r}). Ctrl-C stops it.")
    sys.stdout.flush()
    await _until_signal(serve_kazoo_sandbox(
        host, port, username=username, password=settings.kazoo_password.get_secret_value() or SANDBOX_PASSWORD,
        account_name=settings.kazoo_account_name or SANDBOX_ACCOUNT_NAME,
        api_key=settings.kazoo_api_key.get_secret_value() or SANDBOX_API_KEY))


async def _until_signal(serving: Coroutine[Any, Any, None]) -> None:
    """Run `serving` until SIGINT or SIGTERM; a port in use is one line, not a traceback."""
    task = asyncio.ensure_future(serving)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        pass
    except OSError as exc:
        raise IvrError(f"cannot listen: {exc.strerror or exc}") from None


# -- ivr outbound --------------------------------------------------------------------------

CODE_MESSAGES = {
    "en": "This is the key office. Your update code for today is",
    "fr": "Ici le bureau des clés. Votre code de mise à jour du jour est",
    "es": "Le llama la oficina de llaves. Su código de actualización de hoy es",
}
"""What `ivr outbound code` says before the digits, in the job's language."""

_OPTION_OF_FIELD = {"to": "--to", "message": "--message", "code": "--code", "language": "--language",
                    "agent": "--agent", "via": "--via", "idempotency_key": "--idempotency-key",
                    "not_before": "--not-before", "max_attempts": "--max-attempts", "kind": "kind",
                    "status": "--status", "limit": "--limit"}


@cli.group()
def outbound() -> None:
    """Outbound calls: a notice spoken to a key holder, or an agent's phone bridged to one.

    Jobs are kept in IVR_DATA_DIR's store, where `ivr serve` places them (at once, or within
    IVR_OUTBOUND_HOURS for notices) and retries busy or unanswered calls.

    \b
    Example:
      ivr outbound notice --to 5551234 --message "Your showing is confirmed." --wait
    """


def _submit_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed((
        click.option("--via", type=click.Choice(["asterisk", "ictcore", "kazoo"]),
                     help="The platform (default: IVR_OUTBOUND_VIA)."),
        click.option("--idempotency-key", help="The same key within 24 h gives back the same job."),
        click.option("--not-before", help="Not before this time, ISO 8601 with its zone (2026-12-03T09:00+01:00)."),
        click.option("--max-attempts", type=int, help="Calls at most (default: IVR_OUTBOUND_MAX_ATTEMPTS)."),
        click.option("--wait", is_flag=True, help="Show each change of state; exit 0 once completed, 1 otherwise."),
    )):
        command = option(command)
    return command


@outbound.command("notice")
@click.option("--to", required=True, help="The number to call: +E.164, or 3-15 digits.")
@click.option("--message", required=True, help="What to say, 1-500 characters (spoken by TTS).")
@click.option("--code", help="A code of 4-12 digits, said digit by digit after the message.")
@click.option("--language", help="en, fr or es (default: the first of IVR_LANGUAGES).")
@_submit_options
@_run
async def outbound_notice(wait: bool, **fields: Any) -> None:
    """Call a key holder and speak MESSAGE (and CODE), with "press 1 to hear it again"."""
    await _submit({"kind": "notice", **fields}, wait)


@outbound.command("bridge")
@click.option("--agent", required=True, help="The agent's endpoint, rung first (e.g. PJSIP/agent1).")
@click.option("--to", required=True, help="The key holder's number, dialled once the agent answers.")
@_submit_options
@_run
async def outbound_bridge(wait: bool, **fields: Any) -> None:
    """Ring the agent's phone; once they answer, call the key holder and connect them."""
    await _submit({"kind": "bridge", **fields}, wait)


@outbound.command("code")
@click.option("--key-number", required=True, type=int, help="The key number.")
@click.option("--member", required=True, type=int, help="The member whose update code it is.")
@click.option("--pod", required=True, type=int, help="The pod.")
@click.option("--to", required=True, help="The number to call.")
@click.option("--language", help="en, fr or es (default: the first of IVR_LANGUAGES).")
@_submit_options
@_run
async def outbound_code(key_number: int, member: int, pod: int, wait: bool, **fields: Any) -> None:
    """Get today's update code from KimVoice (ValidateKeyHolder, GetUpdateCode) and call the key
    holder to read it to them. With the embedded sandbox: --key-number 123456 --member 5001 --pod 1."""
    settings = _settings(log_level=None if _verbose_logs() else "warning")
    async with open_kimvoice(settings) as client:
        await client.validate_key_holder(key_number, member, pod, CodeType.UPDATE)
        code = await client.get_update_code(key_number, member, member, pod)
    language = fields.get("language") or settings.languages[0]
    message = CODE_MESSAGES.get(language, CODE_MESSAGES["en"])
    await _submit({"kind": "notice", "message": message, "code": str(code.update_code), **fields}, wait)


@outbound.command("list")
@click.option("--status", help="Only jobs in this state (queued, dialing, ..., completed, failed).")
@click.option("--limit", default=20, show_default=True, type=int, help="How many jobs, newest first.")
@_run
async def outbound_list(status: str | None, limit: int) -> None:
    """List jobs, newest first."""
    async with _outbound() as (_, jobs):
        found, _more = await _checked(jobs.list(status, limit))
    if not found:
        click.echo("no jobs" + (f" {status}" if status else ""))
        return
    click.echo(f"{'job':<26}  {'kind':<6} {'to':<16} {'via':<8} {'tries':>5}  {'updated (UTC)':<19}  state")
    for job in found:
        updated = datetime.fromtimestamp(job.updated, UTC).strftime("%Y-%m-%d %H:%M:%S")
        click.echo(f"{job.id:<26}  {job.kind.value:<6} {job.to:<16} {job.via:<8} {job.attempts_used:>5}  "
                   f"{updated:<19}  {job.state.value}")


@outbound.command("show")
@click.argument("job_id")
@_run
async def outbound_show(job_id: str) -> None:
    """A job, its attempts (with the platform's references) and its history."""
    async with _outbound() as (_, jobs):
        job = await jobs.get(job_id)
    view = job.view()
    click.echo(f"job {job.id}: {job.kind.value} to {job.to} via {job.via}, {job.state.value}"
               + (f" ({_printable(job.reason)})" if job.reason else ""))
    if job.kind.value == "notice":
        click.echo(f"  message ({job.language}): {_printable(job.message or '')}")
        if view["code"]:
            click.echo(f"  code: {view['code']}")
    else:
        click.echo(f"  agent: {_printable(job.agent or '')}")
    click.echo(f"  attempts: {job.attempts_used} of {job.max_attempts}" + (" (cancel requested)"
                                                                          if job.cancel_requested else ""))
    for attempt in view["attempts"]:
        refs = ", ".join(f"{k}={_printable(v)}" for k, v in attempt["refs"].items()) or "-"
        click.echo(f"    #{attempt['number']} {attempt['state']:<10} {_printable(attempt['reason'])}  [{refs}]")
    for entry in job.history:
        click.echo(_history_line(entry))


@outbound.command("cancel")
@click.argument("job_id")
@_run
async def outbound_cancel(job_id: str) -> None:
    """Cancel a job: a queued one at once; one in progress is not tried again after its call."""
    async with _outbound() as (_, jobs):
        job = await jobs.cancel(job_id)
    if job.state.value == "cancelled":
        click.echo(f"job {job.id} cancelled")
    elif job.cancel_requested:
        click.echo(f"job {job.id} is {job.state.value}: that call goes on, and no other will be placed")
    else:
        click.echo(f"job {job.id} is already {job.state.value}: nothing to cancel")


@contextlib.asynccontextmanager
async def _outbound() -> Any:
    from ivr.outbound import Outbound
    from ivr.store import SqliteStore

    settings = _settings()
    store = await SqliteStore.open(settings.data_dir / "calls.db")
    try:
        yield store, Outbound(store, settings)
    finally:
        await store.close()


async def _checked(action: Coroutine[Any, Any, T]) -> T:
    """A job request's broken rule as a usage error naming the option."""
    from ivr.errors import JobInputError

    try:
        return await action
    except JobInputError as exc:
        _usage(f"{_OPTION_OF_FIELD.get(exc.field, exc.field)}: {exc.rule}")


async def _submit(fields: dict[str, Any], wait: bool) -> None:
    body = {key: value for key, value in fields.items() if value is not None}
    async with _outbound() as (store, jobs):
        job, created = await _checked(jobs.submit(body))
        what = f"{job.kind.value} to {job.to} via {job.via}"
        click.echo(f"job {job.id} {'queued' if created else 'already exists'}: {what}")
        if wait:
            try:
                final = await _follow(store, jobs, job.id)
            except asyncio.CancelledError:
                click.echo(f"stopped waiting; the job goes on: ivr outbound show {job.id}", err=True)
                raise
            sys.exit(0 if final == "completed" else EXIT_FAILURE)


async def _follow(store: Any, jobs: Any, job_id: str) -> str:
    """Print each change of the job until it is final; its final state."""
    import time

    from ivr.outbound._runner import LEASE_SECONDS
    from ivr.service import SIM_CALLEES

    shown: set[tuple[float, str, str]] = set()
    warned = False
    while True:
        job = await jobs.get(job_id)
        for entry in job.history:
            if (entry.at, entry.state.value, entry.reason) not in shown:
                shown.add((entry.at, entry.state.value, entry.reason))
                click.echo(_history_line(entry))
        if job.final:
            break
        if not warned and not await store.runner_alive(time.time(), LEASE_SECONDS):
            click.echo("  (no `ivr serve` is running the jobs of this data directory: the job waits for one)")
            warned = True
        await asyncio.sleep(0.2)
    settings = _settings()
    heard = settings.data_dir / SIM_CALLEES / f"{job.id}.txt"
    if heard.is_file():
        click.echo("The simulated callee heard:")
        for line in heard.read_text(encoding="utf-8", errors="replace").splitlines():
            click.echo(f"  {_printable(line)}")
    for attempt in job.attempts:
        for record in await store.announce_records(attempt.id):
            outcome = record.outcome.value if record.outcome else "?"
            click.echo(f"announce call {_printable(record.call_id)}: {outcome}; "
                       f"codes read: {', '.join(record.codes) or '-'}")
    return str(job.state.value)


def _history_line(entry: Any) -> str:
    when = datetime.fromtimestamp(entry.at, UTC).strftime("%H:%M:%S")
    attempt = f"#{entry.attempt} " if entry.attempt else ""
    return f"  {when}  {entry.state.value:<10} {attempt}{_printable(entry.reason)}"


# -- ivr prompts ---------------------------------------------------------------------------


@cli.group()
def prompts() -> None:
    """Spoken prompts: the sound files Asterisk plays, built from the texts in prompts/."""


@prompts.command("build")
@click.option("--lang", "languages", multiple=True,
              help="A language to build, e.g. en (repeat, or en,fr,es; default: every language in prompts/).")
@click.option("--out", type=click.Path(file_okay=False),
              help="Output folder (default: IVR_SOUNDS_DIR, else <IVR_DATA_DIR>/sounds).")
@click.option("--engine", type=click.Choice(["espeak", "command", "http"]),
              help="TTS engine (default: IVR_TTS_ENGINE, espeak).")
@click.option("--force", is_flag=True, help="Render every file again, even those whose text and voice are unchanged.")
@_run
async def prompts_build(languages: tuple[str, ...], out: str | None, engine: str | None, force: bool) -> None:
    """Render every prompt text to <out>/<lang>/keybox/<id>.wav, 8 kHz 16-bit mono.

    Files whose text and engine settings are unchanged since the last build are skipped.
    """
    from ivr.catalog import PromptCatalog, default_prompts_dir
    from ivr.tts import build_prompts, engine_from_settings

    settings = _settings(tts_engine=engine, sounds_dir=out, log_level=None if _verbose_logs() else "warning")
    tts = engine_from_settings(settings)
    if tts is None:
        raise IvrError("IVR_TTS_ENGINE=none makes no audio: use --engine espeak (or command, http)")
    chosen = [lang.strip().lower() for value in languages for lang in value.split(",") if lang.strip()]
    catalog = PromptCatalog.load(default_prompts_dir())
    summary = await build_prompts(catalog, settings.sounds_dir, tts, languages=chosen or None, force=force)
    click.echo(f"{summary.line()} [{tts.name}]")


def main() -> None:
    """The console script: settings errors become one line, never a traceback."""
    try:
        cli(standalone_mode=True)
    except IvrError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
