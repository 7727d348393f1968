"""`ivr sms` (a code by text message, as the call flow sends it, and Kimoby's webhooks) and
`ivr kimoby-sandbox`."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import click

from ivr.cli._common import printable, read_settings, run, serve_until_signal, usage, verbose_logs
from ivr.errors import IvrError, SettingsError, SmsInputError
from ivr.logging import mask_code
from ivr.settings import SANDBOX_URL, Settings

if TYPE_CHECKING:
    from ivr.backends.kimoby import KimobyClient

INTRO_PROMPTS = {"update": "your-update-code-is", "cbs": "your-cbs-code-is", "netcode": "your-netcode-is"}
"""The prompt the caller hears before each kind of code: the words a text starts with."""
_CODE = re.compile(r"^[0-9]{4,12}$")
_NO_KIMOBY = "IVR_KIMOBY_URL is not set: no Kimoby to ask"
_EMBEDDED_KIMOBY = ("IVR_KIMOBY_URL=sandbox is the sandbox inside `ivr serve`: run `ivr kimoby-sandbox` and point "
                    "IVR_KIMOBY_URL at it to ask it from here")


@click.group()
def sms() -> None:
    """Text messages through Kimoby: a code sent as the call flow sends it, and the webhooks that
    tell the service how each text went.

    They use IVR_KIMOBY_URL, IVR_KIMOBY_API_KEY and IVR_KIMOBY_API_SECRET; the secret is never
    printed.

    \b
    Example:
      ivr sms send --key-number 123456 --code 4384341
      ivr sms webhooks --register https://ivr.example.com/webhooks/kimoby
    """


@sms.command("send")
@click.option("--key-number", required=True, type=click.IntRange(1, 2_147_483_647),
              help="The key number: its key holder is the Kimoby customer of IVR_KIMOBY_CUSTOMER_REFERENCE.")
@click.option("--code", required=True, help="The code to send, 4-12 digits.")
@click.option("--kind", type=click.Choice(list(INTRO_PROMPTS)), default="update", show_default=True,
              help="Which code it is: the words before it are what a caller hears before such a code.")
@click.option("--language", help="The text's language (default: the first of IVR_LANGUAGES).")
@run
async def sms_send(key_number: int, code: str, kind: str, language: str | None) -> None:
    """Text CODE to the key holder of KEY_NUMBER, worded as the call flow words it, unless they
    unsubscribed (in Kimoby, or in the service's records). Prints the message's id and status;
    the code shows masked, the text not at all."""
    from ivr.backends.kimoby import KimobyTexts
    from ivr.catalog import PromptCatalog, default_prompts_dir
    from ivr.errors import SmsError
    from ivr.flow.texts import code_text
    from ivr.store import SqliteStore

    settings = read_settings(log_level=None if verbose_logs() else "error")
    if settings.kimoby_url is None:
        usage(_NO_KIMOBY)
    if settings.kimoby_url == SANDBOX_URL:
        usage(_EMBEDDED_KIMOBY)
    if not _CODE.match(code):
        usage("--code: 4 to 12 digits")
    language = language or settings.languages[0]
    if language not in settings.languages:
        usage(f"--language {printable(language)[:12]!r}: one of IVR_LANGUAGES ({', '.join(settings.languages)})")
    catalog = PromptCatalog.load(default_prompts_dir())
    body = code_text(catalog.text(INTRO_PROMPTS[kind], language), code)
    store = await SqliteStore.open(settings.data_dir / "calls.db")
    try:
        async with _kimoby_client(settings) as client:
            texts = KimobyTexts(client, reference=settings.kimoby_customer_reference,
                                unsubscribed=store.is_unsubscribed)
            message_id = await texts.send(key_number, body)
            try:
                status = (await client.message(message_id)).status.value
            except SmsError as exc:  # the text went: say so, with what is not known
                status = f"status unknown ({exc})"
    finally:
        await store.close()
    click.echo(f"text message {message_id} ({status}) to Kimoby customer reference "
               f"{printable(texts.reference(key_number))}: {kind} code {mask_code(code)}")


@sms.command("webhooks")
@click.option("--register", "register", is_flag=False, flag_value="", metavar="[URL]",
              help="Register URL (default: IVR_KIMOBY_WEBHOOK_URL) and print its key, this once.")
@click.option("--replace", is_flag=True, help="With --register: delete the webhook of that URL first.")
@click.option("--delete", "delete", metavar="ID", help="Delete the webhook ID.")
@run
async def sms_webhooks(register: str | None, replace: bool, delete: str | None) -> None:
    """List Kimoby's webhooks (the one of IVR_KIMOBY_WEBHOOK_URL marked), register one, or delete one.

    Kimoby shows a webhook's key once, in the answer to its creation, and the service needs it
    to check every webhook (IVR_KIMOBY_WEBHOOK_KEY). So --register prints it, on purpose, to this
    terminal: the one place a secret is printed. Put it in the service's settings at once; lost,
    it takes --register --replace, which makes a new key.
    """
    if register is not None and delete is not None:
        usage("--register and --delete: one at a time")
    if replace and register is None:
        usage("--replace goes with --register")
    # The key is what --register makes: an operator who set IVR_KIMOBY_WEBHOOK_URL has none yet,
    # and no mode of this command uses it, so its absence must not stop the settings.
    settings = read_settings(log_level=None if verbose_logs() else "error", kimoby_webhook_key="unused here")
    if settings.kimoby_url is None:
        usage(_NO_KIMOBY)
    if settings.kimoby_url == SANDBOX_URL:
        usage(_EMBEDDED_KIMOBY)
    ours = settings.kimoby_webhook_url  # as typed: the URL Kimoby has, and signs, byte for byte
    url = (register or ours) if register is not None else None
    if register is not None and not url:
        usage("--register: no URL given, and IVR_KIMOBY_WEBHOOK_URL is not set")
    async with _kimoby_client(settings) as client:
        if delete is not None:
            try:
                deleted = await client.delete_webhook(delete)
            except SmsInputError as exc:
                usage(f"--delete: {exc}")
            if not deleted:
                raise IvrError(f"Kimoby has no webhook {printable(delete)[:128]!r}")
            click.echo(f"deleted webhook {delete}")
            return
        webhooks = await client.webhooks()
        if url is None:
            if not webhooks:
                click.echo("no webhooks: `ivr sms webhooks --register` registers IVR_KIMOBY_WEBHOOK_URL")
            for webhook in webhooks:
                mark = "  (IVR_KIMOBY_WEBHOOK_URL)" if ours is not None and webhook.url == ours else ""
                click.echo(f"{webhook.id}  {printable(webhook.url)}{mark}")
            return
        taken = [webhook for webhook in webhooks if webhook.url == url]
        if taken and not replace:
            raise IvrError(f"webhook {taken[0].id} has that URL already: --replace deletes it and registers "
                           "the URL again, with a new key")
        for webhook in taken:
            await client.delete_webhook(webhook.id)
            click.echo(f"deleted webhook {webhook.id}")
        made = await client.create_webhook(url)
    click.echo(f"registered webhook {made.id} for {printable(made.url)}")
    click.echo("Its key, shown this once: set it in the service's settings (then restart it):")
    click.echo(f"IVR_KIMOBY_WEBHOOK_KEY={made.authentication_key}")


@contextlib.asynccontextmanager
async def _kimoby_client(settings: Settings) -> AsyncIterator[KimobyClient]:
    """The client of the settings; Kimoby refusing the API key and secret is a failure (exit 1),
    not a setting missing (exit 2)."""
    from ivr.backends.kimoby import KimobyClient

    client = KimobyClient(str(settings.kimoby_url), settings.kimoby_api_key,
                          settings.kimoby_api_secret.get_secret_value(), timeout=10.0)
    try:
        yield client
    except SettingsError as exc:
        raise IvrError(str(exc)) from None
    finally:
        await client.aclose()


@click.command("kimoby-sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8084, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any).")
@run
async def kimoby_sandbox(host: str, port: int) -> None:
    """Run a Kimoby sandbox: the API subset the line uses (customers, messages, webhooks), its
    webhooks signed and retried as Kimoby's are.

    Its credentials are IVR_KIMOBY_API_KEY / IVR_KIMOBY_API_SECRET (defaults: the sandbox's own).
    Its customers are the KimVoice sandbox's test keys, by reference; texts to most are
    delivered, the banner says which are not. A customer texting STOP:
    curl -X POST http://HOST:PORT/sandbox/customers/123456/unsubscribe
    """
    from ivr.backends.kimoby.sandbox import (
        SANDBOX_API_KEY,
        SANDBOX_API_SECRET,
        KimobySandbox,
        KimobySandboxServer,
        seed_customer_lines,
    )

    settings = read_settings()
    api_key = settings.kimoby_api_key or SANDBOX_API_KEY
    sandbox = KimobySandbox(api_key=api_key,
                            api_secret=settings.kimoby_api_secret.get_secret_value() or SANDBOX_API_SECRET)
    server = KimobySandboxServer(sandbox, host, port, log_requests=True)

    await serve_until_signal(server, lambda: [
        f"Kimoby sandbox on {server.api_url} (IVR_KIMOBY_URL; API key {api_key!r}). Ctrl-C stops it.",
        "Customers:", *(f"  {line}" for line in seed_customer_lines())])


COMMANDS = (sms, kimoby_sandbox)
