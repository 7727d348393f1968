"""`ivr outbound`: notices and bridged calls as jobs; and the simulated peers that place them
without a PBX (`ivr asterisk-sim`, `ivr ictcore-sandbox`)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from ivr.backends.kimvoice import CodeType, open_kimvoice
from ivr.cli._common import (
    EXIT_FAILURE,
    check_address,
    printable,
    read_settings,
    run,
    until_signal,
    usage,
    verbose_logs,
)

T = TypeVar("T")


# -- the simulated peers of outbound calls -------------------------------------------------


@click.command("asterisk-sim")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the AMI listens on.")
@click.option("--port", default=5038, show_default=True, type=click.IntRange(0, 65535), help="AMI port (0: any).")
@click.option("--agi", "address", callback=check_address,
              help="Where answered notices run the announce route (default: IVR_AGI_HOST:IVR_AGI_PORT).")
@click.option("--ring-seconds", default=1.0, show_default=True, type=click.FloatRange(0, 60),
              help="How long each callee rings.")
@run
async def asterisk_sim(host: str, port: int, address: str | None, ring_seconds: float) -> None:
    """Run the simulated Asterisk's Manager (AMI): the service's outbound calls without a PBX.

    Its one user is IVR_AMI_USERNAME with IVR_AMI_SECRET (default secret: sim-secret). Numbers
    5550101 are busy, 5550102 ring unanswered, 5550103 congested, 5550104 fail; any other
    answers and hears the announce route of the service at --agi. What each callee heard goes
    to IVR_DATA_DIR/sim-callees/<job id>.txt, codes masked.
    """
    from ivr.service import SIM_CALLEES
    from ivr.sim import serve_simulated_ami

    settings = read_settings()
    secret = settings.ami_secret.get_secret_value() or "sim-secret"
    agi = address or f"{settings.agi_host}:{settings.agi_port}"
    click.echo(f"Simulated Asterisk Manager on {host}:{port} (user {settings.ami_username!r}); "
               f"answered notices run the announce route on {agi}. Ctrl-C stops it.")
    sys.stdout.flush()
    await until_signal(serve_simulated_ami(
        host, port, agi_address=agi, username=settings.ami_username, secret=secret,
        heard_dir=settings.data_dir / SIM_CALLEES, ring_seconds=ring_seconds))


@click.command("ictcore-sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8082, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any).")
@run
async def ictcore_sandbox(host: str, port: int) -> None:
    """Run an ICTCore sandbox: the API subset the line uses, with ICTCore's quirks.

    Its user is IVR_ICTCORE_USERNAME with IVR_ICTCORE_PASSWORD (default: keybox / sandbox-password).
    Numbers 5550101 end busy, 5550102 unanswered, 5550104 failed; any other completes.
    """
    from ivr.outbound.platforms.ictcore.sandbox import SANDBOX_PASSWORD, serve_ictcore_sandbox

    settings = read_settings()
    password = settings.ictcore_password.get_secret_value() or SANDBOX_PASSWORD
    click.echo(f"ICTCore sandbox on http://{host}:{port}/ (user {settings.ictcore_username!r}). Ctrl-C stops it.")
    sys.stdout.flush()
    await until_signal(serve_ictcore_sandbox(host, port, username=settings.ictcore_username, password=password))


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


@click.group()
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
@run
async def outbound_notice(wait: bool, **fields: Any) -> None:
    """Call a key holder and speak MESSAGE (and CODE), with "press 1 to hear it again"."""
    await _submit({"kind": "notice", **fields}, wait)


@outbound.command("bridge")
@click.option("--agent", required=True, help="The agent's endpoint, rung first (e.g. PJSIP/agent1).")
@click.option("--to", required=True, help="The key holder's number, dialled once the agent answers.")
@_submit_options
@run
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
@run
async def outbound_code(key_number: int, member: int, pod: int, wait: bool, **fields: Any) -> None:
    """Get today's update code from KimVoice (ValidateKeyHolder, GetUpdateCode) and call the key
    holder to read it to them. With the embedded sandbox: --key-number 123456 --member 5001 --pod 1."""
    settings = read_settings(log_level=None if verbose_logs() else "warning")
    language = fields.get("language") or settings.languages[0]
    notice = {"kind": "notice", "message": CODE_MESSAGES.get(language, CODE_MESSAGES["en"]), **fields}
    async with _outbound() as (_, jobs):  # its own options first: KimVoice is asked only for a job it can keep
        await _checked(_check(jobs, notice))
    async with open_kimvoice(settings) as client:
        await client.validate_key_holder(key_number, member, pod, CodeType.UPDATE)
        code = await client.get_update_code(key_number, member, member, pod)
    await _submit({**notice, "code": str(code.update_code)}, wait)


@outbound.command("list")
@click.option("--status", help="Only jobs in this state (queued, dialing, ..., completed, failed).")
@click.option("--limit", default=20, show_default=True, type=int, help="How many jobs, newest first.")
@run
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
@run
async def outbound_show(job_id: str) -> None:
    """A job, its attempts (with the platform's references) and its history."""
    async with _outbound() as (_, jobs):
        job = await jobs.get(job_id)
    view = job.view()
    click.echo(f"job {job.id}: {job.kind.value} to {job.to} via {job.via}, {job.state.value}"
               + (f" ({printable(job.reason)})" if job.reason else ""))
    if job.kind.value == "notice":
        click.echo(f"  message ({job.language}): {printable(job.message or '')}")
        if view["code"]:
            click.echo(f"  code: {view['code']}")
    else:
        click.echo(f"  agent: {printable(job.agent or '')}")
    click.echo(f"  attempts: {job.attempts_used} of {job.max_attempts}" + (" (cancel requested)"
                                                                          if job.cancel_requested else ""))
    for attempt in view["attempts"]:
        refs = ", ".join(f"{k}={printable(v)}" for k, v in attempt["refs"].items()) or "-"
        click.echo(f"    #{attempt['number']} {attempt['state']:<10} {printable(attempt['reason'])}  [{refs}]")
    for entry in job.history:
        click.echo(_history_line(entry))


@outbound.command("cancel")
@click.argument("job_id")
@run
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

    settings = read_settings()
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
        usage(f"{_OPTION_OF_FIELD.get(exc.field, exc.field)}: {exc.rule}")


async def _check(jobs: Any, fields: dict[str, Any]) -> None:
    """`Outbound.check` as `_checked` takes it: a broken rule is the usage line naming the option."""
    jobs.check(_given(fields))


async def _submit(fields: dict[str, Any], wait: bool) -> None:
    async with _outbound() as (store, jobs):
        job, created = await _checked(jobs.submit(_given(fields)))
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
    settings = read_settings()
    heard = settings.data_dir / SIM_CALLEES / f"{job.id}.txt"
    if heard.is_file():
        click.echo("The simulated callee heard:")
        for line in heard.read_text(encoding="utf-8", errors="replace").splitlines():
            click.echo(f"  {printable(line)}")
    for attempt in job.attempts:
        for record in await store.announce_records(attempt.id):
            outcome = record.outcome.value if record.outcome else "?"
            click.echo(f"announce call {printable(record.call_id)}: {outcome}; "
                       f"codes read: {', '.join(record.codes) or '-'}")
    return str(job.state.value)


def _given(fields: dict[str, Any]) -> dict[str, Any]:
    """The options given (click passes the others as None)."""
    return {key: value for key, value in fields.items() if value is not None}


def _history_line(entry: Any) -> str:
    when = datetime.fromtimestamp(entry.at, UTC).strftime("%H:%M:%S")
    attempt = f"#{entry.attempt} " if entry.attempt else ""
    return f"  {when}  {entry.state.value:<10} {attempt}{printable(entry.reason)}"


COMMANDS = (asterisk_sim, ictcore_sandbox, outbound)
