"""`ivr kazoo` (the callflows that pivot to the service) and `ivr kazoo-sandbox`."""

from __future__ import annotations

import contextlib
import hmac
import re
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import click

from ivr.cli._common import (
    EXIT_FAILURE,
    printable,
    read_settings,
    run,
    serve_until_signal,
    usage,
    verbose_logs,
)
from ivr.errors import IvrError, SettingsError
from ivr.settings import Settings

if TYPE_CHECKING:
    from ivr.outbound.platforms.kazoo import KazooClient


@click.command("kazoo-sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8083, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any).")
@click.option("--media/--no-media", default=True, show_default=True,
              help="Play the pivot callflows its quickcalls reach (Kazoo's media side), else only answer them.")
@run
async def kazoo_sandbox(host: str, port: int, media: bool) -> None:
    """Run a Kazoo crossbar sandbox: the API subset the line uses (auth, quickcall, devices,
    callflows, CDRs, channels), with its envelopes.

    Its user is IVR_KAZOO_USERNAME / IVR_KAZOO_PASSWORD in IVR_KAZOO_ACCOUNT_NAME, its API key
    IVR_KAZOO_API_KEY (defaults: the sandbox's own). Numbers 5550101 end busy, 5550102
    unanswered, 5550104 failed; any other answers. A quickcall to the number of a pivot
    callflow (`ivr kazoo provision`) is played against its voice URL, a running `ivr serve`,
    by a callee who listens and presses nothing; what they heard goes to
    IVR_DATA_DIR/sim-callees/<job id>.txt, codes masked.
    """
    from ivr.catalog import PromptCatalog, default_prompts_dir
    from ivr.outbound.platforms.kazoo.sandbox import (
        SANDBOX_ACCOUNT_NAME,
        SANDBOX_API_KEY,
        SANDBOX_PASSWORD,
        SANDBOX_USERNAME,
        KazooSandbox,
        KazooSandboxServer,
    )
    from ivr.service import SIM_CALLEES
    from ivr.sim import KazooMediaSide, SoundLibrary
    from ivr.tts import TtsCache

    settings = read_settings()
    username = settings.kazoo_username or SANDBOX_USERNAME
    sandbox = KazooSandbox(
        username=username, password=settings.kazoo_password.get_secret_value() or SANDBOX_PASSWORD,
        account_name=settings.kazoo_account_name or SANDBOX_ACCOUNT_NAME,
        api_key=settings.kazoo_api_key.get_secret_value() or SANDBOX_API_KEY)
    server = KazooSandboxServer(sandbox, host, port, log_requests=True)
    side = KazooMediaSide(sandbox, sounds=SoundLibrary(PromptCatalog.load(default_prompts_dir()),
                                                       TtsCache(settings.data_dir / "tts")),
                          heard_dir=settings.data_dir / SIM_CALLEES) if media else None

    played = "; pivot callflows are played" if side is not None else ""
    if side is not None:
        side.attach()  # its calls come only once the server listens
    await serve_until_signal(
        server, lambda: [f"Kazoo sandbox on {server.crossbar_url}/ (user {username!r}){played}. Ctrl-C stops it."],
        after=side.close if side is not None else None)


# -- ivr kazoo -----------------------------------------------------------------------------

KAZOO_ROUTES = ("announce", "keybox", "identify")
_KAZOO_NUMBER = re.compile(r"^\+?[0-9]{3,15}$")


@click.group()
def kazoo() -> None:
    """Kazoo (2600Hz): the callflows that send numbers to this service's pivot routes.

    They use IVR_KAZOO_URL and its credentials, IVR_PUBLIC_URL (how Kazoo reaches the service)
    and IVR_KAZOO_PIVOT_SECRET; the secret is never printed.

    \b
    Example:
      ivr kazoo provision --number 5550900          # the callflow of IVR_KAZOO_NOTICE_NUMBER
      ivr kazoo status
    """


@kazoo.command("provision")
@click.option("--number", required=True, help="The number Kazoo routes to the service: 3-15 digits, or +digits.")
@click.option("--route", type=click.Choice(KAZOO_ROUTES), default="announce", show_default=True,
              help="announce: notices (IVR_KAZOO_NOTICE_NUMBER); keybox, identify: key holders calling in.")
@click.option("--name", help="The callflow's name (default: the one it has, else `keybox <route>`).")
@click.option("--replace", is_flag=True, help="Take over the number from a callflow that does not pivot here.")
@run
async def kazoo_provision(number: str, route: str, name: str | None, replace: bool) -> None:
    """Create or update the callflow sending NUMBER to {IVR_PUBLIC_URL}/kazoo/pivot/ROUTE: one
    `pivot` module (req_format kazoo). Run again, it changes nothing and says so."""
    settings = _kazoo_settings()
    missing = [setting for setting, value in (
        ("IVR_KAZOO_URL", settings.kazoo_url), ("IVR_PUBLIC_URL", settings.public_url),
        ("IVR_KAZOO_PIVOT_SECRET", settings.kazoo_pivot_secret.get_secret_value())) if not value]
    if missing:
        usage(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: "
              "provisioning needs where Kazoo is, how it reaches the service, and the pivot secret")
    if not _KAZOO_NUMBER.match(number):
        usage(f"--number {printable(number)[:40]!r}: 3 to 15 digits, or + and digits")
    from ivr.outbound.platforms.kazoo import provision_pivot

    public = str(settings.public_url).rstrip("/")
    async with _kazoo_client(settings) as client:
        done = await provision_pivot(client, number=number, public_url=public, route=route,
                                     secret=settings.kazoo_pivot_secret.get_secret_value(), name=name,
                                     replace=replace)
    shown = f"{public}/kazoo/pivot/{route}?secret=…"
    if done.action == "unchanged":
        click.echo(f"callflow {done.callflow_id} ({printable(done.name)}) already sends {number} to {shown}: "
                   "nothing changed")
    else:
        click.echo(f"{done.action} callflow {done.callflow_id} ({printable(done.name)}): {number} -> {shown}")


@kazoo.command("status")
@run
async def kazoo_status() -> None:
    """One screen for an operator: crossbar and its credentials, the callflows that pivot to this
    service (and whether their secret is ours), the notice number, the calls in progress.
    Exits 0 when Kazoo accepts the credentials, 1 otherwise."""
    from ivr.errors import PlatformError
    from ivr.outbound.platforms.kazoo import JOB_VARIABLE, pivot_callflows, same_number

    settings = _kazoo_settings()
    if settings.kazoo_url is None:
        usage("IVR_KAZOO_URL is not set: no Kazoo to ask")
    public = str(settings.public_url or f"http://{settings.http_host}:{settings.http_port}").rstrip("/")
    secret = settings.kazoo_pivot_secret.get_secret_value()
    async with _kazoo_client(settings, wrap=False) as client:
        who = (f"user {settings.kazoo_username!r} in account name {settings.kazoo_account_name!r}"
               if client.auth_method == "user_auth" else "IVR_KAZOO_API_KEY")
        click.echo(f"crossbar:   {settings.kazoo_url} ({client.auth_method}, {who})")
        try:
            account = await client.authenticate()
        except (PlatformError, SettingsError) as exc:
            click.echo(f"auth:       FAILED: {exc}")
            sys.exit(EXIT_FAILURE)
        click.echo(f"auth:       ok, account {account}")
        click.echo(f"pivots to:  {public}/kazoo/pivot/" + ("" if settings.public_url else "  (IVR_PUBLIC_URL unset: "
                                                               "the service's default)"))
        try:
            flows = await pivot_callflows(client, public)
        except (PlatformError, SettingsError) as exc:
            click.echo(f"  callflows: {exc}")
            flows = []
        else:
            if not flows:
                click.echo("  no callflow pivots to this service: `ivr kazoo provision --number N`")
        for flow in flows:
            same = "no secret" if flow.secret is None else (
                "secret matches" if secret and hmac.compare_digest(flow.secret.encode(), secret.encode())
                else "secret DIFFERS from IVR_KAZOO_PIVOT_SECRET")
            numbers = printable(", ".join(flow.numbers)) or "-"
            click.echo(f"  {flow.callflow_id} ({printable(flow.name)}): {numbers} -> {flow.route}, {same}")
        notice = settings.kazoo_notice_number
        if not notice:
            click.echo("notices:    IVR_KAZOO_NOTICE_NUMBER is not set: no notices via Kazoo")
        else:
            to = next((f for f in flows if any(same_number(n, notice) for n in f.numbers)), None)
            state = ("provisioned to announce" if to is not None and to.route == "announce"
                     else f"goes to {to.route}, not announce" if to is not None
                     else "NOT provisioned here: `ivr kazoo provision --number " + notice + "`")
            click.echo(f"notices:    IVR_KAZOO_NOTICE_NUMBER {notice} {state}")
        try:
            channels = await client.channels()
        except (PlatformError, SettingsError) as exc:
            click.echo(f"calls:      {exc}")
            return
        told = [ch for ch in channels if isinstance(ch.raw.get("custom_application_vars"), dict)]
        ours = sum(1 for ch in told if JOB_VARIABLE in ch.raw["custom_application_vars"])
        click.echo(f"calls:      {len(channels)} in progress" + (
            "" if not channels else f", {ours} ours" if told else " (Kazoo's list does not say which are ours)"))


def _kazoo_settings() -> Settings:
    return read_settings(log_level=None if verbose_logs() else "error")


@contextlib.asynccontextmanager
async def _kazoo_client(settings: Settings, *, wrap: bool = True) -> AsyncIterator[KazooClient]:
    """The crossbar client of the settings; with `wrap`, Kazoo refusing the credentials is a
    failure (exit 1), not a setting missing (exit 2)."""
    from ivr.outbound.platforms.kazoo import KazooClient

    client = KazooClient.from_settings(settings, timeout=10.0)
    try:
        yield client
    except SettingsError as exc:
        if not wrap:
            raise
        raise IvrError(str(exc)) from None
    finally:
        await client.aclose()


COMMANDS = (kazoo_sandbox, kazoo)
