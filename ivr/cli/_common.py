"""What every `ivr` command shares: settings with logging, the async runner that turns an error
into one line and an exit code, option checks, and the wait for Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from ivr.errors import InvalidParameterError, IvrError, SettingsError
from ivr.logging import configure_logging
from ivr.settings import Settings, load_settings

if TYPE_CHECKING:  # uvicorn is heavy: `ivr --help` must start fast
    from ivr.embedded_http import EmbeddedHttpServer

T = TypeVar("T")

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_SCRIPT_KEYS = frozenset("0123456789*#_!")


def read_settings(**overrides: Any) -> Settings:
    """The settings, `None` overrides left out, with logging configured from them."""
    settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    configure_logging(settings.log_format, settings.log_level)
    return settings


def run(main: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., T]:
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


def usage(message: str) -> NoReturn:
    """A bad option: one line and exit 2, as for a bad setting."""
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_USAGE)


def printable(text: str) -> str:
    """`text` with control characters escaped: a peer-supplied value must not drive the terminal."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def verbose_logs() -> bool:
    """Whether IVR_LOG_LEVEL asks for info or debug: commands that print for a person otherwise
    keep their logs to warnings. Read before the settings, which may be the thing that fails."""
    return os.environ.get("IVR_LOG_LEVEL", "").lower() in ("debug", "info")


async def until_signal(serving: Coroutine[Any, Any, None]) -> None:
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


async def serve_until_signal(
    server: EmbeddedHttpServer, banner: Callable[[], Iterable[str]],
    after: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """A sandbox command: start `server`, print `banner()` once it listens (so it names the port it
    really got), serve until SIGINT or SIGTERM, then run `after` and stop it."""

    async def serving() -> None:
        await server.start()
        try:
            for line in banner():
                click.echo(line)
            sys.stdout.flush()
            await server.wait()
        finally:
            if after is not None:
                await after()
            await server.stop()

    await until_signal(serving())


def check_digits(_: click.Context, __: click.Parameter, value: str | None) -> str | None:
    for position, key in enumerate(value or "", 1):
        if key not in _SCRIPT_KEYS and not key.isspace():
            usage(f"--digits: {key!r} (character {position}) is not a key: use 0-9 * #, "
                  "_ for silence at a question, ! to hang up")
    return value


def check_address(_: click.Context, __: click.Parameter, value: str | None) -> str | None:
    """host:port as the simulated Asterisk reads it ([v6]:port too; no port: 4573)."""
    if value is None:
        return None
    if value.startswith("["):
        port = value.partition("]")[2].removeprefix(":")
    else:
        port = value.partition(":")[2] if value.count(":") == 1 else ""
    if port and not (port.isdecimal() and 1 <= int(port) <= 65535):
        usage(f"--agi {value}: the port {port!r} is not a number from 1 to 65535 (host:port, e.g. 127.0.0.1:4573)")
    return value
