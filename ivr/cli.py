"""The `ivr` command. Thin: parse options, call the package, print the outcome."""

from __future__ import annotations

import asyncio
import functools
import json
import signal
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeVar

import click

from ivr.errors import InvalidParameterError, IvrError, SettingsError
from ivr.kimvoice import METHODS, CodeType, Method, open_kimvoice
from ivr.logging import configure_logging
from ivr.settings import Settings, load_settings

T = TypeVar("T")

EXIT_FAILURE = 1
EXIT_USAGE = 2


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
    from ivr.kimvoice.sandbox import SEED_BOXES, SEED_KEYS, Knobs, Sandbox, SandboxServer

    settings = _settings(
        sandbox_mode=mode, sandbox_latency=latency, sandbox_failure_rate=failure_rate,
        sandbox_token_lifetime=token_lifetime,
    )
    knobs = Knobs(
        operational_mode=settings.sandbox_mode, latency=settings.sandbox_latency,
        failure_rate=settings.sandbox_failure_rate, token_lifetime=settings.sandbox_token_lifetime,
    )
    server = SandboxServer(Sandbox(knobs), host, port, log_requests=True)
    try:
        url = await server.start()
    except OSError as exc:
        raise IvrError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    click.echo(f"KimVoice sandbox on {url}/api/V1/  (client id {settings.kimvoice_client_id!r})")
    click.echo("Test keys:")
    for key in SEED_KEYS:
        click.echo(f"  key {key.key_number}  PIN {key.pin}  {key.purpose}")
    for box in SEED_BOXES:
        click.echo(f"  box {box.box_number}  shackle {box.shackle_code}  {box.purpose}")
    click.echo("Ctrl-C stops it.", nl=True)
    sys.stdout.flush()
    serving = asyncio.ensure_future(server.serve_forever())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, serving.cancel)
    try:
        await serving
    except asyncio.CancelledError:
        pass
    await server.stop()


# -- ivr kimvoice ----------------------------------------------------------------------


@cli.group()
@click.option("--url", help="KimVoice base URL (default: IVR_KIMVOICE_URL; unset: an embedded sandbox).")
@click.pass_context
def kimvoice(ctx: click.Context, url: str | None) -> None:
    """Call one KimVoice method and print its answer as JSON (QA's way to poke a backend).

    \b
    Example:
      ivr kimvoice get-key-holders --key-number 123456 --pin 2580
    """
    ctx.obj = {"url": url}


def _kebab(name: str) -> str:
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")


def _option_for(name: str, annotation: Any, description: str | None) -> click.Option:
    click_type: click.ParamType = click.STRING
    if annotation is int:
        click_type = click.INT
    elif isinstance(annotation, type) and issubclass(annotation, Enum):
        click_type = click.Choice([m.value for m in annotation], case_sensitive=False)
    return click.Option([f"--{name.replace('_', '-')}"], type=click_type, required=True, help=description)


def _method_command(method: Method) -> click.Command:
    validates_first = method.attribute in ("get_update_code", "get_cbs_code")

    @click.pass_context
    def command(ctx: click.Context, **values: Any) -> None:
        _run(_call_method)(ctx.obj["url"], method, values, validates_first)

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


async def _call_method(url: str | None, method: Method, values: dict[str, Any], validates_first: bool) -> None:
    settings = _settings(kimvoice_url=url)
    validate = values.pop("validate", False)
    pod_number = values.pop("pod_number", None) if method.attribute == "get_cbs_code" else values.get("pod_number")
    async with open_kimvoice(settings) as client:
        if validates_first and validate:
            member = values.get("update_member", values.get("primary_member"))
            code_type = CodeType.UPDATE if method.attribute == "get_update_code" else CodeType.CBS
            await client.validate_key_holder(values["key_number"], member, pod_number, code_type)
        result = await getattr(client, method.attribute)(**values)
    click.echo(json.dumps(result.to_wire(), indent=2, ensure_ascii=False))


@kimvoice.command("log-on")
@click.pass_context
def log_on(ctx: click.Context) -> None:
    """Log on (POST api/V1/Token/LogOn) and show the token's lifetime; the token itself is masked."""
    _run(_log_on)(ctx.obj["url"])


async def _log_on(url: str | None) -> None:
    async with open_kimvoice(_settings(kimvoice_url=url)) as client:
        token = await client.log_on()

    def iso(t: float | None) -> str | None:
        return None if t is None else datetime.fromtimestamp(t, UTC).isoformat()

    out = {"token": token.masked(), "notBefore": iso(token.not_before), "expires": iso(token.expires)}
    click.echo(json.dumps(out, indent=2, ensure_ascii=False))


for _method in METHODS:
    kimvoice.add_command(_method_command(_method))


def main() -> None:
    """The console script: settings errors become one line, never a traceback."""
    try:
        cli(standalone_mode=True)
    except IvrError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
