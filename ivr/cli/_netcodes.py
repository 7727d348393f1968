"""`ivr netcode` (a lock's NetCode for an agent to read to a caller) and `ivr codelocks-sandbox`."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from ivr.cli._common import read_settings, run, serve_until_signal, usage, verbose_logs
from ivr.errors import IvrError, SettingsError
from ivr.settings import SANDBOX_URL


@click.command("netcode")
@click.option("--lock", "lock_number", required=True, help="The lock's number in IVR_CODELOCKS_LOCKS_FILE.")
@click.option("--duration", type=click.IntRange(0, 18),
              help="A Codelocks duration id: 0-11 for 1-12 hours, 12-18 for 1-7 days (default: the lock's).")
@run
async def netcode(lock_number: str, duration: int | None) -> None:
    """Get the NetCode of a lock for now, to read to a caller: the one the service hands out in
    this hour (or day), kept and counted in the same store, so an agent and the line never spend
    two Codelocks calls on one period. The NetCode shows in full; exits 1 when the month's
    budget (IVR_CODELOCKS_MONTHLY_BUDGET) or Codelocks' quota is used up.
    """
    from ivr.backends.codelocks import DURATIONS, CodelocksClient, NetCodes, durations_of, load_locks
    from ivr.store import SqliteStore

    settings = read_settings(log_level=None if verbose_logs() else "error")
    if settings.codelocks_url == SANDBOX_URL:
        usage("IVR_CODELOCKS_URL=sandbox is the sandbox inside `ivr serve`: run `ivr codelocks-sandbox` and point "
              "IVR_CODELOCKS_URL at it to ask it from here")
    if settings.codelocks_url is None or settings.codelocks_locks_file is None:
        usage("IVR_CODELOCKS_URL is not set: no Codelocks to ask")
    locks = load_locks(settings.codelocks_locks_file)
    lock = locks.find(lock_number)
    if lock is None:
        usage(f"--lock {lock_number[:12]!r}: no such lock in IVR_CODELOCKS_LOCKS_FILE {locks.source}")
    if duration is not None and duration not in durations_of(lock.model):
        usage(f"--duration {duration} ({DURATIONS[duration]}) is not a duration of lock {lock.number}'s model "
              f"{lock.model}")
    async with CodelocksClient(str(settings.codelocks_url), settings.codelocks_api_key.get_secret_value()) as client:
        store = await SqliteStore.open(settings.data_dir / "calls.db")
        try:
            netcodes = NetCodes(client, store, monthly_budget=settings.codelocks_monthly_budget)
            try:
                issued = await netcodes.issue(lock, duration=duration)
            except SettingsError as exc:  # Codelocks refused the key: a failure, not a setting missing
                raise IvrError(str(exc)) from None
            used = await store.netcode_calls(datetime.now(UTC).strftime("%Y-%m"))
        finally:
            await store.close()
    until = issued.valid_until.astimezone(lock.zone).strftime("%Y-%m-%d %H:%M")
    click.echo(f"lock {lock.number} ({lock.timezone}): NetCode {issued.code}")
    click.echo(f"  starts {issued.start}, lasts {DURATIONS[issued.duration]}; the one handed out until {until} "
               "(the lock's time)")
    click.echo(f"  Codelocks NetCode calls this month: {used}/{settings.codelocks_monthly_budget}")


@click.command("codelocks-sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8085, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any).")
@run
async def codelocks_sandbox(host: str, port: int) -> None:
    """Run a Codelocks Connect sandbox: the NetCode and durations calls behind x-api-key, with a
    monthly quota (100 NetCode calls).

    Its API key is IVR_CODELOCKS_API_KEY (default: the sandbox's own). Its locks are those of the
    sample lock directory the banner names (IVR_CODELOCKS_LOCKS_FILE); a NetCode is always the
    same for a lock, start and duration. Knobs: curl -X PATCH http://HOST:PORT/sandbox/knobs
    -d '{"netcode_remaining": 0}'.
    """
    from ivr.backends.codelocks.sandbox import (
        SAMPLE_LOCKS_FILE,
        SANDBOX_API_KEY,
        CodelocksSandbox,
        CodelocksSandboxServer,
    )

    settings = read_settings()
    sandbox = CodelocksSandbox(api_key=settings.codelocks_api_key.get_secret_value() or SANDBOX_API_KEY)
    server = CodelocksSandboxServer(sandbox, host, port, log_requests=True)

    await serve_until_signal(server, lambda: [
        f"Codelocks sandbox on {server.url} (IVR_CODELOCKS_URL). Ctrl-C stops it.",
        f"Its locks: IVR_CODELOCKS_LOCKS_FILE={SAMPLE_LOCKS_FILE}"])


COMMANDS = (netcode, codelocks_sandbox)
