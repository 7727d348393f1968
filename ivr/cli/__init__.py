"""The `ivr` command. Thin: parse options, call the package, print the outcome.

One module per concept, each a tuple `COMMANDS` of the commands it adds: `_kimvoice` (the
KimVoice sandbox and methods), `_line` (the service, calls from a terminal, prompts), `_records`
(calls and lockouts kept in the store), `_outbound` (outbound jobs and their simulated peers),
`_kazoo` (Kazoo's callflows and sandbox), `_texts` (text messages through Kimoby) and `_netcodes`
(lock NetCodes from Codelocks). What they share is in `_common`. Heavy imports stay inside the
commands: `ivr --help` must start fast.
"""

from __future__ import annotations

import sys

import click

from ivr.cli import _kazoo, _kimvoice, _line, _netcodes, _outbound, _records, _texts
from ivr.cli._common import EXIT_USAGE
from ivr.errors import IvrError

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="keybox-ivr")
def cli() -> None:
    """keybox-ivr: the phone line key holders call for update codes and lockbox codes.

    Settings come from IVR_* environment variables (or a .env file); with IVR_KIMVOICE_URL
    unset, commands use an embedded KimVoice sandbox.
    """


for _module in (_kimvoice, _line, _records, _outbound, _kazoo, _texts, _netcodes):
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def main() -> None:
    """The console script: settings errors become one line, never a traceback."""
    try:
        cli(standalone_mode=True)
    except IvrError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
