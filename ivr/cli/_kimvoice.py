"""`ivr sandbox` and `ivr kimvoice`: the KimVoice sandbox, and one KimVoice method at a time."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import click

from ivr.backends.kimvoice import METHODS, CodeType, Method, OperationalMode, open_kimvoice
from ivr.cli._common import read_settings, run, until_signal, verbose_logs
from ivr.errors import IvrError


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8081, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any).")
@click.option("--mode", type=click.Choice(["Normal", "DisasterRecovery"]), help="HealthCheck's operational mode.")
@click.option("--latency", type=click.FloatRange(0, 60), help="Seconds added before every answer.")
@click.option("--failure-rate", type=click.FloatRange(0, 1), help="Share of requests that fail.")
@click.option("--failure-status", type=click.Choice(["500", "502", "503", "504"]),
              help="How they fail: 503 with ApiError 9001 (default), or a bare 500, 502 or 504.")
@click.option("--token-lifetime", type=click.FloatRange(min=1), help="Seconds a new token lives (default 48 h).")
@run
async def sandbox(
    host: str, port: int, mode: str | None, latency: float | None, failure_rate: float | None,
    failure_status: str | None, token_lifetime: float | None,
) -> None:
    """Run the KimVoice sandbox: the whole wire contract over seeded test keys.

    Fault knobs can also be changed while it runs:
    curl -X PATCH http://HOST:PORT/sandbox/knobs -d '{"latency": 3}'
    (also GET /sandbox/knobs, GET /sandbox/stats, POST /sandbox/reset, POST /sandbox/revoke-tokens).
    """
    from ivr.backends.kimvoice.sandbox import Knobs, Sandbox, SandboxServer, seed_key_lines

    settings = read_settings(
        sandbox_mode=mode, sandbox_latency=latency, sandbox_failure_rate=failure_rate,
        sandbox_failure_status=failure_status, sandbox_token_lifetime=token_lifetime,
    )
    knobs = Knobs(
        operational_mode=OperationalMode(settings.sandbox_mode), latency=settings.sandbox_latency,
        failure_rate=settings.sandbox_failure_rate, failure_status=settings.sandbox_failure_status,
        token_lifetime=settings.sandbox_token_lifetime,
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
        await until_signal(server.wait())
    finally:
        await server.stop()


# -- ivr kimvoice ----------------------------------------------------------------------


@click.group()
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
    ctx.obj = {"url": url, "log_level": None if verbose or verbose_logs() else "warning"}


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
        run(_call_method)(ctx.obj, method, values, validates_first)

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
    settings = read_settings(kimvoice_url=options["url"], log_level=options["log_level"])
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
    run(_log_on)(ctx.obj)


async def _log_on(options: dict[str, Any]) -> None:
    async with open_kimvoice(read_settings(kimvoice_url=options["url"], log_level=options["log_level"])) as client:
        token = await client.log_on()

    def iso(t: float | None) -> str | None:
        return None if t is None else datetime.fromtimestamp(t, UTC).isoformat()

    out = {"token": token.masked(), "notBefore": iso(token.not_before), "expires": iso(token.expires)}
    click.echo(json.dumps(out, indent=2, ensure_ascii=False))


for _method in METHODS:
    kimvoice.add_command(_method_command(_method))



COMMANDS = (sandbox, kimvoice)
