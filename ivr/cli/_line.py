"""The line itself: `ivr serve`, `ivr agi`, calls placed from a terminal (`ivr call`, `ivr demo`)
and `ivr prompts build`."""

from __future__ import annotations

import contextlib
import tempfile

import click

from ivr.cli._common import check_address, check_digits, printable, read_settings, run, usage, verbose_logs
from ivr.cli._records import call_line
from ivr.errors import IvrError
from ivr.settings import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, SANDBOX_URL, Settings

# -- the service -------------------------------------------------------------------------


@click.command()
@run
async def serve() -> None:
    """Run the service: FastAGI on IVR_AGI_HOST:IVR_AGI_PORT, /healthz and /metrics over HTTP.

    With IVR_KIMVOICE_URL unset it uses an embedded KimVoice sandbox, and says so; it refuses to
    when IVR_AGI_HOST or IVR_HTTP_HOST listen beyond loopback, unless IVR_KIMVOICE_URL=sandbox.
    SIGTERM drains: no new calls, calls in progress finish (within IVR_DRAIN_SECONDS).
    """
    from ivr.service import serve as run_service

    try:
        await run_service(read_settings())
    except OSError as exc:
        raise IvrError(f"cannot listen: {exc.strerror or exc}") from None


@click.command("agi")
@click.argument("route", default="keybox")
@run
async def classic_agi(route: str) -> None:
    """Classic AGI: Asterisk runs this per call, e.g. AGI(ivr-agi,keybox), over stdin/stdout."""
    from ivr.flow.runner import run_call
    from ivr.service import open_services
    from ivr.transports.agi import run_classic_agi

    async with open_services(read_settings()) as services:
        await run_classic_agi(lambda call: run_call(call, services), route)


# -- calls in a terminal --------------------------------------------------------------------

#: What `ivr demo` types on each route (after the language choice, when there is one), and the
#: outcomes that show the call worked.
DEMO_CALLS: dict[str, tuple[str, frozenset[str]]] = {
    "keybox": ("123456#2580#19", frozenset({"update_code_read", "cbs_code_read"})),
    "identify": ("123456#9", frozenset({"identified"})),
}


def _check_route(_: click.Context, __: click.Parameter, value: str) -> str:
    """An unknown route would only be heard as `system-unavailable`: say it here instead."""
    from ivr.flow.runner import ROUTES

    if value.partition("?")[0] not in ROUTES:
        usage(f"the service does not know route {value!r}: use {', '.join(ROUTES)} (e.g. announce?job=ID)")
    return value


@click.command("call")
@click.option("--route", default="keybox", show_default=True, callback=_check_route,
              help="keybox, identify or announce (announce?job=ID).")
@click.option("--digits", callback=check_digits,
              help='Keys the caller types, in order, e.g. "123456#2580#19" (_ = silence, ! = hang up). '
                   "Without it, you type at each question.")
@click.option("--agi", "address", callback=check_address,
              help="FastAGI address host:port (default: IVR_AGI_HOST:IVR_AGI_PORT).")
@click.option("--language", default="en", show_default=True, help="The channel's language at the start.")
@click.option("--caller-id", default="+15555550100", show_default=True, help="The calling number.")
@click.option("--hangup-on", help="Hang up while this prompt plays (a prompt id, or digits / tts).")
@click.option("--via", type=click.Choice(["agi", "pivot"]), default="agi", show_default=True,
              help="FastAGI, as Asterisk calls; or pivot: Kazoo's pivot requests to the service's HTTP listener.")
@click.option("--url", help="With --via pivot: the service's HTTP base URL (default: IVR_HTTP_HOST:IVR_HTTP_PORT).")
@run
async def call(route: str, digits: str | None, address: str | None, language: str, caller_id: str,
               hangup_on: str | None, via: str, url: str | None) -> None:
    """Place a call through the simulated Asterisk (or, --via pivot, as Kazoo would) into a
    running service (`ivr serve`)."""
    import httpx

    settings = read_settings()
    if via == "pivot":
        address = url or f"http://{settings.http_host}:{settings.http_port}"
        if not settings.kazoo_pivot_secret.get_secret_value():
            usage("--via pivot: IVR_KAZOO_PIVOT_SECRET is not set, and the service refuses pivot requests without it")
    else:
        address = address or f"{settings.agi_host}:{settings.agi_port}"
    try:
        await _place(settings, address, route, digits, language, caller_id, hangup_on, via=via)
    except (OSError, httpx.TransportError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise IvrError(f"nothing answers on {address} ({why}): start `ivr serve`, or try `ivr demo`") from None


@click.command()
@click.option("--route", type=click.Choice(list(DEMO_CALLS)), default="keybox", show_default=True,
              help="keybox: an update code; identify: who holds a found key.")
@click.option("--digits", callback=check_digits,
              help="Keys the caller types (default: the route's demo keys, after 1 for the first language "
                   "when IVR_LANGUAGES has several).")
@run
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
        settings = read_settings(agi_port=0, http_port=0, data_dir=data_dir, kimvoice_url=SANDBOX_URL,
                             kimvoice_client_id=SANDBOX_CLIENT_ID, kimvoice_client_secret=SANDBOX_CLIENT_SECRET,
                             log_level=None if verbose_logs() else "warning")
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
    click.echo(f"\nCall record: {call_line(record)}")
    click.echo(f"  steps: {' > '.join(s.name for s in record.steps)}")
    click.echo(f"  codes read (masked): {', '.join(record.codes) or '-'}")
    outcome = record.outcome.value if record.outcome else "no outcome"
    if outcome not in expected:
        detail = f" ({printable(record.detail)})" if record.detail else ""
        raise IvrError(f"the demo call ended {outcome}{detail}, not {' or '.join(sorted(expected))}")



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
                click.echo(f"  Kazoo would end the call here: {printable(pivot.failure)}")
        else:
            result = await place_call(address, route, caller=caller, sounds=sounds, language=language,
                                      caller_id=caller_id, timeout=timeout)
            transcript, unique_id = result.transcript, result.unique_id
    if digits is not None:
        for line in transcript.render(catalog, language):
            click.echo(f"  {line}")
    return unique_id



# -- ivr prompts ---------------------------------------------------------------------------


@click.group()
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
@run
async def prompts_build(languages: tuple[str, ...], out: str | None, engine: str | None, force: bool) -> None:
    """Render every prompt text to <out>/<lang>/keybox/<id>.wav, 8 kHz 16-bit mono.

    Files whose text and engine settings are unchanged since the last build are skipped.
    """
    from ivr.catalog import PromptCatalog, default_prompts_dir
    from ivr.tts import build_prompts, engine_from_settings

    settings = read_settings(tts_engine=engine, sounds_dir=out, log_level=None if verbose_logs() else "warning")
    tts = engine_from_settings(settings)
    if tts is None:
        raise IvrError("IVR_TTS_ENGINE=none makes no audio: use --engine espeak (or command, http)")
    chosen = [lang.strip().lower() for value in languages for lang in value.split(",") if lang.strip()]
    catalog = PromptCatalog.load(default_prompts_dir())
    summary = await build_prompts(catalog, settings.sounds_dir, tts, languages=chosen or None, force=force)
    click.echo(f"{summary.line()} [{tts.name}]")


COMMANDS = (serve, classic_agi, call, demo, prompts)
