"""`ivr calls` and `ivr lockouts`: what the store kept of past calls, and the locks in force."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from ivr.cli._common import printable, read_settings, run
from ivr.errors import IvrError


@click.command()
@click.argument("call_id", required=False)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000), help="How many calls.")
@run
async def calls(call_id: str | None, limit: int) -> None:
    """List recent calls, or show one call's steps and backend requests."""
    from ivr.store import SqliteStore

    settings = read_settings()
    store = await SqliteStore.open(settings.data_dir / "calls.db")
    try:
        records = await store.recent(limit) if call_id is None else await store.all_of(call_id)
    finally:
        await store.close()
    if call_id is None:
        click.echo(_CALLS_HEADER if records else f"no calls yet in {settings.data_dir / 'calls.db'}")
        for record in records:
            click.echo(call_line(record))
        return
    if not records:
        raise IvrError(f"no call {printable(call_id)!r} in {settings.data_dir / 'calls.db'}")
    for record in records:
        click.echo(call_line(record))
        if record.detail:
            click.echo(f"  detail: {printable(record.detail)}")
        if record.codes:
            click.echo(f"  codes read: {', '.join(record.codes)}")
        for step in record.steps:
            click.echo(f"  {step.at:8.3f}s  {step.name:<28} {'' if step.ms is None else f'{step.ms:.0f} ms'}")
        for backend in record.backend:
            click.echo(f"  {backend.at:8.3f}s  backend {backend.method:<20} {backend.ms:.0f} ms  {backend.result}")


@click.group(invoke_without_command=True)
@click.pass_context
def lockouts(ctx: click.Context) -> None:
    """The locks in force: key numbers and calling numbers refused after too many wrong PINs.

    A key number shows masked (it may hold a PIN typed without #); lift a lock with
    `ivr lockouts clear 123456` (a key or calling number, or `withheld`).
    """
    if ctx.invoked_subcommand is None:
        _lockouts_list()


@run
async def _lockouts_list() -> None:
    from ivr.store import SqliteStore

    settings = read_settings()
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
        click.echo(f"{lock.kind:<9} {printable(lock.label):<24} {until}")


@lockouts.command("clear")
@click.argument("subject")
@run
async def lockouts_clear(subject: str) -> None:
    """Lift the lock on SUBJECT (a key number, a calling number, or `withheld`) and forget its
    wrong guesses. A running service sees it at the subject's next try."""
    from ivr.flow.guard import caller_subject, is_withheld, key_subject
    from ivr.install_key import install_key
    from ivr.store import SqliteStore

    settings = read_settings()
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
        click.echo(f"no lock on {printable(subject)!r}; its wrong guesses are forgotten")
        return
    for lock in lifted:
        click.echo(f"lifted: {lock.kind} {printable(lock.label)}")


_CALLS_HEADER = f"{'started (UTC)':<19}  {'call id':<24} {'route':<9} {'caller':<16} {'key':<14} {'length':>7}  outcome"


def call_line(record: Any) -> str:
    """One call record on one line, as `ivr calls` lists them and `ivr demo` ends with."""
    when = datetime.fromtimestamp(record.started, UTC).strftime("%Y-%m-%d %H:%M:%S")
    duration = f"{(record.ended or record.started) - record.started:.1f}s"
    outcome = record.outcome.value if record.outcome else "?"
    key = record.key_shown or "-"
    return (f"{when}  {printable(record.call_id):<24} {printable(record.route):<9} "
            f"{printable(record.caller_id):<16} key {key:<10} {duration:>7}  {outcome}")


COMMANDS = (calls, lockouts)
