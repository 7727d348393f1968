"""The ICTCore client against the sandbox on a real loopback socket: tokens, ids, statuses, errors."""

from __future__ import annotations

import asyncio
import base64
import itertools
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ivr.embedded_http import EmbeddedHttpServer
from ivr.errors import PlatformRejectedError, PlatformUnavailableError, SettingsError
from ivr.outbound.platforms.ictcore import IctCoreClient
from ivr.outbound.platforms.ictcore.sandbox import (
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
    IctCoreKnobs,
    IctCoreSandbox,
    IctCoreSandboxServer,
    serve_ictcore_sandbox,
)


@pytest.fixture
async def server() -> AsyncIterator[IctCoreSandboxServer]:
    async with IctCoreSandboxServer(IctCoreSandbox(IctCoreKnobs(call_seconds=0.01))) as running:
        yield running


@pytest.fixture
async def client(server: IctCoreSandboxServer) -> AsyncIterator[IctCoreClient]:
    ictcore = IctCoreClient(server.url, SANDBOX_USERNAME, SANDBOX_PASSWORD, timeout=2.0)
    yield ictcore
    await ictcore.aclose()


async def test_a_token_is_got_once_and_sent_as_bearer(server: IctCoreSandboxServer, client: IctCoreClient) -> None:
    await client.contact_for("5550123")
    await client.contact_for("5550124")
    assert server.sandbox.requests["POST /authenticate"] == 1


async def test_a_401_gets_a_new_token_once(server: IctCoreSandboxServer, client: IctCoreClient) -> None:
    await client.authenticate()
    server.sandbox.revoke_tokens()
    assert await client.contact_for("5550123") > 0
    assert server.sandbox.requests["POST /authenticate"] == 2
    assert server.sandbox.statuses["GET /contacts", 401] == 1


async def test_a_fresh_token_refused_again_is_a_settings_error() -> None:
    ticks = itertools.count(1_800_000_000, 10)  # every look at the clock is 10 s later: tokens die at once
    sandbox = IctCoreSandbox(IctCoreKnobs(token_lifetime=5), clock=lambda: float(next(ticks)))
    async with IctCoreSandboxServer(sandbox) as server:
        ictcore = IctCoreClient(server.url, SANDBOX_USERNAME, SANDBOX_PASSWORD, timeout=2.0)
        try:
            with pytest.raises(SettingsError) as caught:
                await ictcore.contact_for("5550123")
        finally:
            await ictcore.aclose()
    assert "IVR_ICTCORE_USERNAME" in str(caught.value) and SANDBOX_PASSWORD not in str(caught.value)
    assert sandbox.requests["POST /authenticate"] == 2
    assert sandbox.requests["POST /contacts"] == 0


async def test_wrong_credentials_name_the_settings_not_the_password(server: IctCoreSandboxServer) -> None:
    ictcore = IctCoreClient(server.url, SANDBOX_USERNAME, "not-the-password-42", timeout=2.0)
    try:
        with pytest.raises(SettingsError) as caught:
            await ictcore.authenticate()
    finally:
        await ictcore.aclose()
    message = str(caught.value)
    assert "IVR_ICTCORE_USERNAME" in message and "IVR_ICTCORE_PASSWORD" in message
    assert "not-the-password-42" not in message


@pytest.mark.parametrize("flip", [False, True], ids=["bare-contact-object-program", "object-contact-bare-program"])
async def test_ids_as_bare_numbers_and_as_objects(server: IctCoreSandboxServer, client: IctCoreClient,
                                                  flip: bool) -> None:
    server.sandbox.knobs.flip_ids = flip
    contact_id = await client.contact_for("5550123")
    program_id = await client.create_tts_program("t", "Hello.")
    transmission_id = await client.create_transmission("t", contact_id, program_id)
    answer = await client.send(transmission_id)
    assert contact_id in server.sandbox.contacts
    assert program_id in server.sandbox.programs
    assert transmission_id in server.sandbox.transmissions
    assert answer.spool_id == server.sandbox.transmissions[transmission_id].spools[0]["spool_id"]
    assert server.sandbox.transmissions[transmission_id].try_allowed == 1


@pytest.mark.parametrize("as_object", [False, True], ids=["bare-string", "object"])
async def test_status_as_a_string_or_an_object(server: IctCoreSandboxServer, client: IctCoreClient,
                                               as_object: bool) -> None:
    server.sandbox.knobs.status_as_object = as_object
    contact_id = await client.contact_for("5550123")
    transmission_id = await client.create_transmission("t", contact_id, await client.create_tts_program("t", "Hi."))
    assert await client.status(transmission_id) == "pending"
    await client.send(transmission_id)
    assert await client.status(transmission_id) in ("processing", "completed")
    assert await client.status(999_999) is None


async def test_an_empty_200_from_a_create_is_unavailable_not_an_id(server: IctCoreSandboxServer,
                                                                  client: IctCoreClient) -> None:
    server.sandbox.knobs.empty_create_body = True
    with pytest.raises(PlatformUnavailableError, match="without the new id"):
        await client.create_tts_program("t", "Hello.")


async def test_an_empty_200_from_send_is_an_answer_without_a_spool(server: IctCoreSandboxServer,
                                                                  client: IctCoreClient) -> None:
    contact_id = await client.contact_for("5550123")
    transmission_id = await client.create_transmission("t", contact_id, await client.create_tts_program("t", "Hi."))
    server.sandbox.knobs.empty_send_body = True
    answer = await client.send(transmission_id)
    assert (answer.spool_id, answer.status) == (None, 200)
    assert server.sandbox.calls[transmission_id] == 1


async def test_a_second_send_answers_423_and_is_not_refused_for_good(server: IctCoreSandboxServer,
                                                                    client: IctCoreClient) -> None:
    server.sandbox.knobs.call_seconds = 30
    contact_id = await client.contact_for("5550123")
    transmission_id = await client.create_transmission("t", contact_id, await client.create_tts_program("t", "Hi."))
    await client.send(transmission_id)
    again = await client.send(transmission_id)
    assert (again.spool_id, again.status) == (None, 423)
    assert server.sandbox.calls[transmission_id] == 1


async def test_412_is_rejected_and_5xx_unavailable(server: IctCoreSandboxServer, client: IctCoreClient) -> None:
    await client.authenticate()
    server.sandbox.knobs.fail_next = [412, 500, 423, 417]
    with pytest.raises(PlatformRejectedError, match="412"):
        await client.create_tts_program("t", "Hi.")
    for status in ("500", "423", "417"):
        with pytest.raises(PlatformUnavailableError, match=status):
            await client.create_tts_program("t", "Hi.")
    assert server.sandbox.programs == {}


async def test_a_contact_is_reused_for_its_exact_number(server: IctCoreSandboxServer, client: IctCoreClient) -> None:
    longer = server.sandbox.create_contact({"first_name": "x", "phone": "15550123"})  # matches the suffix filter
    first = await client.contact_for("5550123")
    assert first != longer
    assert await client.contact_for("5550123") == first
    fresh = IctCoreClient(server.url, SANDBOX_USERNAME, SANDBOX_PASSWORD, timeout=2.0)
    try:
        assert await fresh.contact_for("5550123") == first  # found by its number, not only cached
    finally:
        await fresh.aclose()
    assert server.sandbox.requests["POST /contacts"] == 1


async def test_http_basic_is_accepted_by_the_sandbox(server: IctCoreSandboxServer) -> None:
    basic = "Basic " + base64.b64encode(f"{SANDBOX_USERNAME}:{SANDBOX_PASSWORD}".encode()).decode()
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/contacts", headers={"Authorization": basic})).status_code == 200
        wrong = "Basic " + base64.b64encode(f"{SANDBOX_USERNAME}:nope".encode()).decode()
        assert (await http.get("/contacts", headers={"Authorization": wrong})).status_code == 401
        assert (await http.get("/contacts")).status_code == 401


async def test_unreachable_is_unavailable() -> None:
    server = IctCoreSandboxServer()
    await server.start()
    url = server.url
    await server.stop()
    ictcore = IctCoreClient(url, SANDBOX_USERNAME, SANDBOX_PASSWORD, timeout=2.0)
    try:
        with pytest.raises(PlatformUnavailableError, match="cannot connect"):
            await ictcore.authenticate()
    finally:
        await ictcore.aclose()


async def test_a_closed_connection_is_unavailable(server: IctCoreSandboxServer, client: IctCoreClient) -> None:
    await client.authenticate()
    server.sandbox.knobs.down = True
    with pytest.raises(PlatformUnavailableError, match="connection broke"):
        await client.contact_for("5550123")
    server.sandbox.knobs.down = False
    assert await client.contact_for("5550123") > 0


async def test_an_answer_past_the_bound_is_refused() -> None:
    async def huge(_: Request) -> Response:
        return Response(b"[" + b"1," * (600 * 1024) + b"1]", media_type="application/json")

    async def token(_: Request) -> Response:
        return Response(b'{"token": "t"}', media_type="application/json")

    app = Starlette(routes=[Route("/authenticate", token, methods=["POST"]), Route("/contacts", huge)])
    async with EmbeddedHttpServer(app) as server:
        ictcore = IctCoreClient(server.url, "u", "p", timeout=2.0)
        try:
            with pytest.raises(PlatformUnavailableError, match="bytes"):
                await ictcore.contact_for("5550123")
        finally:
            await ictcore.aclose()


async def test_the_standalone_sandbox_serves_until_cancelled() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serving = asyncio.create_task(serve_ictcore_sandbox("127.0.0.1", port, username="ops", password="pw-1"))
    ictcore = IctCoreClient(f"http://127.0.0.1:{port}", "ops", "pw-1", timeout=2.0)
    try:
        async with asyncio.timeout(5):
            while True:
                try:
                    await ictcore.authenticate()
                    break
                except PlatformUnavailableError:
                    await asyncio.sleep(0.01)
        assert await ictcore.contact_for("5550123") > 0
    finally:
        await ictcore.aclose()
        serving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await serving
