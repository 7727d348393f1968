"""The outbound jobs API over real HTTP on loopback, on a real SQLite store and a real `Outbound`:
tokens, every broken rule at once, body limits, idempotency, pages, cancel — and after any 4xx,
nothing stored."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from ivr.backends.kimvoice import KimVoiceClient
from ivr.embedded_http import EmbeddedHttpServer
from ivr.logging import configure_logging
from ivr.netallow import parse_networks
from ivr.outbound._jobs import Outbound
from ivr.settings import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, load_settings
from ivr.store import SqliteStore
from ivr.web import Metrics, create_app

TOKEN = "tests-token-0123456789"
OTHER_TOKEN = "second-token-abcdefghij"
JOBS = "/v1/outbound/jobs"
CODE = "90817263"
NOTICE: dict[str, Any] = {"kind": "notice", "to": "+15145550123", "message": "Your code for 12 Elm Street.",
                          "code": CODE}
BRIDGE: dict[str, Any] = {"kind": "bridge", "to": "5551234", "agent": "PJSIP/agent1"}


class Api:
    """An HTTP client of the running API, with the token unless told otherwise, that keeps every
    answer's text (to show that no whole code is ever in one)."""

    def __init__(self, http: httpx.AsyncClient, outbound: Outbound, store: SqliteStore) -> None:
        self.http = http
        self.outbound = outbound
        self.store = store
        self.texts: list[str] = []

    async def request(self, method: str, path: str, *, token: str | None = TOKEN, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers.setdefault("Authorization", f"Bearer {token}")
        answer = await self.http.request(method, path, headers=headers, **kwargs)
        self.texts.append(answer.text)
        return answer

    async def submit(self, body: Any, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", JOBS, json=body, **kwargs)

    async def stored(self) -> int:
        """How many jobs the store holds, asked of `Outbound` itself, not over HTTP."""
        jobs, _ = await self.outbound.list(limit=200)
        return len(jobs)


@asynccontextmanager
async def serving(tmp_path: Path, *, tokens: tuple[str, ...] = (TOKEN, OTHER_TOKEN), api: bool = True,
                  **settings: Any) -> AsyncIterator[Api]:
    config = load_settings(data_dir=tmp_path, api_tokens=",".join(tokens), **settings)
    store = await SqliteStore.open(tmp_path / "ivr.db")
    try:
        outbound = Outbound(store, config)
        async with KimVoiceClient("http://127.0.0.1:9", SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET) as kimvoice:
            app = create_app(kimvoice, Metrics(routes=()), lambda: 0, store_healthy=store.healthy,
                             media_allow=parse_networks("127.0.0.0/8"),
                             outbound=outbound if api else None, api_tokens=config.api_tokens)
            async with EmbeddedHttpServer(app) as server, httpx.AsyncClient(base_url=server.url) as http:
                client = Api(http, outbound, store)
                yield client
        for text in client.texts:
            assert CODE not in text, "a whole code in an answer"
    finally:
        await store.close()


def fields(answer: httpx.Response) -> dict[str, str]:
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error"] == "invalid"
    return {error["field"]: error["rule"] for error in body["errors"]}


async def test_a_notice_is_queued_shown_with_its_code_masked_and_found_again(tmp_path: Path) -> None:
    async with serving(tmp_path) as api:
        answer = await api.submit(NOTICE)
        assert answer.status_code == 201, answer.text
        job = answer.json()
        assert answer.headers["location"] == f"{JOBS}/{job['id']}"
        assert answer.headers["cache-control"] == "no-store"
        assert job["state"] == "queued" and job["kind"] == "notice" and job["via"] == "asterisk"
        assert job["code"] == "******63" and job["language"] == "en" and job["max_attempts"] == 3
        assert job["history"][0]["state"] == "queued"
        shown = await api.request("GET", answer.headers["location"])
        assert shown.status_code == 200 and shown.json() == job
        listed = await api.request("GET", JOBS)
        assert listed.json() == {"jobs": [job], "next_cursor": None}
        with_other_token = await api.request("GET", answer.headers["location"], token=OTHER_TOKEN)
        assert with_other_token.status_code == 200, "every configured token is accepted"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"to": "555-CALL-ME"}, "to"),  # a number that is not a number
        ({"to": 5551234}, "to"),  # a JSON number is not the text of one
        ({"to": "+123456"}, "to"),  # E.164 needs 7 digits
        ({"message": "x" * 501}, "message"),
        ({"message": ""}, "message"),
        ({"code": "12ab56"}, "code"),  # a code with letters
        ({"code": "123"}, "code"),
        ({"kind": "fax"}, "kind"),
        ({"via": "skype"}, "via"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"not_before": "2030-01-01T09:00:00"}, "not_before"),  # no time zone
        ({"agent": "PJSIP/agent1"}, "agent"),  # a notice has no agent
        ({"language": "de"}, "language"),  # not a configured language: Outbound's own rule
        ({"colour": "red"}, "colour"),
    ],
)
async def test_each_broken_rule_is_named_and_nothing_is_stored(
    tmp_path: Path, change: dict[str, Any], field: str,
) -> None:
    async with serving(tmp_path) as api:
        broken = await api.submit({**NOTICE, **change})
        assert field in fields(broken), broken.text
        assert await api.stored() == 0


async def test_every_broken_rule_is_answered_at_once(tmp_path: Path) -> None:
    async with serving(tmp_path) as api:
        answer = await api.submit({"kind": "notice", "to": "call me", "message": "x" * 501, "code": "12ab"})
        assert set(fields(answer)) == {"to", "message", "code"}
        bridge = await api.submit({"kind": "bridge", "to": "5551234"})
        assert set(fields(bridge)) == {"agent"}
        assert "kind" in fields(await api.submit({"to": "5551234"}))
        assert await api.stored() == 0


async def test_a_bridge_via_ictcore_is_refused(tmp_path: Path) -> None:
    async with serving(tmp_path) as api:  # ICTCore not configured: the platform is the problem
        assert "via" in fields(await api.submit({**BRIDGE, "via": "ictcore"}))
    async with serving(tmp_path / "ict", ictcore_url="http://127.0.0.1:9/api") as api:
        assert "kind" in fields(await api.submit({**BRIDGE, "via": "ictcore"}))  # ICTCore has no bridge
        assert await api.stored() == 0
        assert (await api.submit({**NOTICE, "via": "ictcore"})).status_code == 201


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token-0123456789", f"Basic {TOKEN}", "Bearer", f"Bearer {TOKEN} extra",
     f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", f"Bearer  {TOKEN}", f"Token {TOKEN}"],
)
async def test_without_a_right_token_nothing_happens(tmp_path: Path, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    async with serving(tmp_path) as api:
        queued = (await api.submit(NOTICE)).json()
        answers = [
            await api.submit(BRIDGE, token=None, headers=headers),
            await api.request("POST", JOBS, token=None, headers={**headers, "Content-Type": "text/plain"},
                              content=b"not even JSON"),  # the body is not looked at
            await api.request("GET", JOBS, token=None, headers=headers),
            await api.request("GET", f"{JOBS}/{queued['id']}", token=None, headers=headers),
            await api.request("POST", f"{JOBS}/{queued['id']}/cancel", token=None, headers=headers),
        ]
        for answer in answers:
            assert answer.status_code == 401, answer.text
            assert answer.headers["www-authenticate"] == "Bearer"
            assert answer.json() == {"error": "unauthorized"}
        assert await api.stored() == 1
        assert (await api.request("GET", f"{JOBS}/{queued['id']}")).json()["state"] == "queued", "not cancelled"


async def test_the_scheme_is_case_insensitive(tmp_path: Path) -> None:
    async with serving(tmp_path) as api:
        answer = await api.request("GET", JOBS, token=None, headers={"Authorization": f"bearer {TOKEN}"})
        assert answer.status_code == 200


@pytest.mark.parametrize("setup", ["no token", "api off"])
async def test_without_a_token_or_with_the_api_off_its_paths_are_unknown(tmp_path: Path, setup: str) -> None:
    options: dict[str, Any] = {"tokens": ()} if setup == "no token" else {"api": False}
    async with serving(tmp_path, **options) as api:
        unknown = await api.request("GET", "/v1/no-such-thing")
        assert unknown.status_code == 404
        job_id = "01J0000000000000000000000A"
        for method, path in [("POST", JOBS), ("GET", JOBS), ("GET", f"{JOBS}/{job_id}"),
                             ("POST", f"{JOBS}/{job_id}/cancel"), ("GET", "/v1/openapi.json")]:
            for token in (TOKEN, None):
                answer = await api.request(method, path, token=token, json=NOTICE if method == "POST" else None)
                assert (answer.status_code, answer.text, answer.headers.get("content-type")) == (
                    404, unknown.text, unknown.headers.get("content-type")), (method, path)
        assert await api.stored() == 0


async def test_an_idempotency_key_gives_one_job(tmp_path: Path) -> None:
    async with serving(tmp_path) as api:
        first = await api.submit(NOTICE, headers={"Idempotency-Key": "order-77"})
        again = await api.submit(NOTICE, headers={"Idempotency-Key": "order-77"})
        in_body = await api.submit({**NOTICE, "idempotency_key": "order-77"})
        assert (first.status_code, again.status_code, in_body.status_code) == (201, 200, 200)
        assert first.json()["id"] == again.json()["id"] == in_body.json()["id"]
        assert "location" not in again.headers
        other = await api.submit({**NOTICE, "message": "Another text."}, headers={"Idempotency-Key": "order-77"})
        assert other.status_code == 409
        assert other.json() == {"error": "conflict", "errors": [
            {"field": "idempotency_key", "rule": "was used within 24 h for another request"}]}
        differs = await api.submit({**NOTICE, "idempotency_key": "order-78"}, headers={"Idempotency-Key": "order-77"})
        assert "idempotency_key" in fields(differs)
        assert "idempotency_key" in fields(await api.submit(NOTICE, headers={"Idempotency-Key": "has space"}))
        assert await api.stored() == 1


@pytest.mark.parametrize(
    ("headers", "content", "status", "field"),
    [
        ({"Content-Type": "text/plain"}, json.dumps(NOTICE).encode(), 415, "Content-Type"),
        ({}, json.dumps(NOTICE).encode(), 415, "Content-Type"),
        ({"Content-Type": "application/x-www-form-urlencoded"}, b"kind=notice", 415, "Content-Type"),
        ({"Content-Type": "application/json; charset=latin-1"}, json.dumps(NOTICE).encode(), 415, "Content-Type"),
        ({"Content-Type": "application/json"}, json.dumps({**NOTICE, "message": "x" * 17000}).encode(), 413, "body"),
        ({"Content-Type": "application/json"}, b"[]", 422, "body"),
        ({"Content-Type": "application/json"}, b'"notice"', 422, "body"),
        ({"Content-Type": "application/json"}, b"", 422, "body"),
        ({"Content-Type": "application/json"}, b'{"kind": "notice",', 422, "body"),
        ({"Content-Type": "application/json"}, b'{"kind": "notice", "to": "5551234", "message": "caf\xe9"}', 422,
         "body"),  # Latin-1, not UTF-8
        ({"Content-Type": "application/json"}, b'{"kind": "notice", "to": "5551234", "message": "\\ud800"}', 422,
         "body"),  # a lone surrogate is not text
        ({"Content-Type": "application/json"}, b'{"kind": "notice", "to": "5551234", "max_attempts": NaN}', 422,
         "body"),
        ({"Content-Type": "application/json"}, b'{"kind": "notice", "to": "5551234", "to": "+15145550123"}', 422,
         "to"),  # given twice: which one counts would be a guess
        ({"Content-Type": "application/json"}, b"[" * 5000 + b"]" * 5000, 422, "body"),
    ],
)
async def test_bodies_that_are_not_a_small_json_object(
    tmp_path: Path, headers: dict[str, str], content: bytes, status: int, field: str,
) -> None:
    async with serving(tmp_path) as api:
        answer = await api.request("POST", JOBS, headers=headers, content=content)
        assert answer.status_code == status, answer.text
        assert field in {error["field"] for error in answer.json()["errors"]}
        assert await api.stored() == 0


async def test_a_large_body_is_refused_whatever_its_length_header_says(tmp_path: Path) -> None:
    """Chunked, without Content-Length: the stream itself is capped."""
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"kind": "notice", "to": "5551234", "message": "'
        for _ in range(40):
            yield b"x" * 1024
        yield b'"}'

    async with serving(tmp_path) as api:
        answer = await api.request("POST", JOBS, headers={"Content-Type": "application/json"}, content=chunks())
        assert answer.status_code == 413 and answer.json()["error"] == "too_large"
        assert await api.stored() == 0
        exactly = json.dumps({**NOTICE, "message": "x" * 400}).encode()
        assert (await api.request("POST", JOBS, headers={"Content-Type": "application/json; charset=UTF-8"},
                                  content=exactly)).status_code == 201


async def test_pages_follow_the_cursor_and_the_status_filter(tmp_path: Path) -> None:
    async with serving(tmp_path) as api:
        made = [(await api.submit({**NOTICE, "to": f"555123{n}"})).json()["id"] for n in range(5)]
        assert (await api.request("POST", f"{JOBS}/{made[1]}/cancel")).json()["state"] == "cancelled"
        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
            page = (await api.request("GET", JOBS, params=params)).json()
            assert len(page["jobs"]) <= 2
            seen += [job["id"] for job in page["jobs"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert pages == 3 and seen == sorted(made, reverse=True), "newest first, each once"
        cancelled = (await api.request("GET", JOBS, params={"status": "cancelled"})).json()
        assert [job["id"] for job in cancelled["jobs"]] == [made[1]] and cancelled["next_cursor"] is None
        queued = (await api.request("GET", JOBS, params={"status": "queued", "limit": "3"})).json()
        assert len(queued["jobs"]) == 3 and queued["next_cursor"] is not None
        rest = (await api.request("GET", JOBS, params={"status": "queued", "cursor": queued["next_cursor"]})).json()
        assert len(rest["jobs"]) == 1 and rest["next_cursor"] is None
        empty = (await api.request("GET", f"{JOBS}?status=&limit=&cursor=")).json()
        assert len(empty["jobs"]) == 5, "empty parameters are no parameters"


@pytest.mark.parametrize(
    ("query", "field"),
    [("status=ringing-ish", "status"), ("limit=0", "limit"), ("limit=201", "limit"), ("limit=ten", "limit"),
     ("limit=-1", "limit"), ("limit=99999999999", "limit"), ("cursor=not-a-cursor", "cursor"),
     ("state=queued", "state"), ("limit=1&limit=2", "limit")],
)
async def test_a_bad_list_parameter_is_named(tmp_path: Path, query: str, field: str) -> None:
    async with serving(tmp_path) as api:
        assert field in fields(await api.request("GET", f"{JOBS}?{query}"))


async def test_cancel_and_unknown_ids(tmp_path: Path) -> None:
    async with serving(tmp_path) as api:
        job = (await api.submit(NOTICE)).json()
        cancelled = await api.request("POST", f"{JOBS}/{job['id']}/cancel")
        assert cancelled.status_code == 200
        assert cancelled.json()["state"] == "cancelled" and cancelled.json()["due"] is None
        assert [entry["state"] for entry in cancelled.json()["history"]] == ["queued", "cancelled"]
        assert cancelled.json()["code"] in (None, "******63")
        again = await api.request("POST", f"{JOBS}/{job['id']}/cancel")
        assert again.status_code == 200 and again.json()["state"] == "cancelled", "a final job stays as it is"
        for unknown in ("01J0000000000000000000000A", "nope", "x" * 300):
            for method, path in [("GET", f"{JOBS}/{unknown}"), ("POST", f"{JOBS}/{unknown}/cancel")]:
                answer = await api.request(method, path)
                assert (answer.status_code, answer.json()) == (404, {"error": "not_found"})


async def test_log_lines_say_which_job_never_its_code_text_or_token(tmp_path: Path) -> None:
    configure_logging("json", "info")  # an earlier test may have left the level at warning
    async with serving(tmp_path) as api:
        with capture_logs() as logs:
            job = (await api.submit(NOTICE)).json()
            for _ in range(5):
                await api.request("GET", JOBS, token="wrong-token-0123456789")
            await api.request("GET", JOBS, token=None)
    submitted = [entry for entry in logs if entry["event"] == "outbound.job_submitted"]
    assert len(submitted) == 1
    assert {k: submitted[0][k] for k in ("id", "kind", "via")} == {"id": job["id"], "kind": "notice",
                                                                   "via": "asterisk"}
    refused = [entry for entry in logs if entry["event"] == "outbound_api.unauthorized"]
    assert len(refused) == 1, "repeated refusals are one throttled line"
    assert refused[0]["reason"] == "wrong"
    text = repr(logs)
    for secret in (CODE, NOTICE["message"], TOKEN, "wrong-token-0123456789"):
        assert secret not in text



async def test_a_store_that_cannot_answer_is_a_503(tmp_path: Path) -> None:
    async with serving(tmp_path) as api:
        with closing(sqlite3.connect(tmp_path / "ivr.db")) as other:  # the table gone under the service
            other.execute("ALTER TABLE jobs RENAME TO jobs_gone")
        answer = await api.request("GET", JOBS)
        assert (answer.status_code, answer.json()) == (503, {"error": "unavailable"})
