"""`/v1/openapi.json` describes exactly the API that is mounted, and is a sound OpenAPI 3.1 document.

No OpenAPI validator is a dependency: the structure is checked by hand (version, operations,
responses, every `$ref` resolving), and the schemas with `jsonschema`, which the dev extra's
check-jsonschema brings — including a real job's view held to the `Job` schema.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from ivr.backends.kimvoice import KimVoiceClient
from ivr.embedded_http import EmbeddedHttpServer
from ivr.netallow import parse_networks
from ivr.outbound import Attempt, JobRequest, JobState
from ivr.outbound._jobs import Outbound
from ivr.settings import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, load_settings
from ivr.store import SqliteStore
from ivr.web import Metrics, create_app, openapi_document

TOKEN = "openapi-test-token-0123"
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@asynccontextmanager
async def serving(tmp_path: Path) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient, SqliteStore]]:
    settings = load_settings(data_dir=tmp_path, api_tokens=TOKEN)
    store = await SqliteStore.open(tmp_path / "ivr.db")
    try:
        async with KimVoiceClient("http://127.0.0.1:9", SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET) as kimvoice:
            app = create_app(kimvoice, Metrics(routes=()), lambda: 0, store_healthy=store.healthy,
                             media_allow=parse_networks("127.0.0.0/8"), tts_dir=tmp_path / "tts",
                             sounds_dir=tmp_path / "sounds", outbound=Outbound(store, settings),
                             api_tokens=settings.api_tokens)
            async with EmbeddedHttpServer(app) as server, httpx.AsyncClient(base_url=server.url) as http:
                yield app, http, store
    finally:
        await store.close()


def refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref":
                yield item
            else:
                yield from refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from refs(item)


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref}: only references inside the document"
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


async def test_the_document_describes_exactly_the_mounted_api(tmp_path: Path) -> None:
    async with serving(tmp_path) as (app, http, _):
        served = await http.get("/v1/openapi.json")  # no token: the document holds no secret
    assert served.status_code == 200 and served.headers["content-type"] == "application/json"
    document = served.json()
    assert document == openapi_document()
    mounted = {
        (route.path, method.lower())
        for route in app.routes
        if isinstance(route, Route) and route.path.startswith("/v1/") and route.path != "/v1/openapi.json"
        for method in route.methods or ()
        if method != "HEAD"  # Starlette adds HEAD to every GET
    }
    described = {(path, method) for path, item in document["paths"].items() for method in item if method in METHODS}
    assert described == mounted
    assert {path for path, _ in mounted} == {"/v1/outbound/jobs", "/v1/outbound/jobs/{id}",
                                             "/v1/outbound/jobs/{id}/cancel"}
    others = {getattr(route, "path", "") for route in app.routes} - {path for path, _ in mounted}
    assert {"/healthz", "/metrics"} <= others and not set(document["paths"]) & others


def test_the_document_is_structurally_sound() -> None:
    document = openapi_document()
    assert re.fullmatch(r"3\.1\.\d+", document["openapi"])
    assert document["info"]["title"] and document["info"]["version"]
    assert set(document) <= {"openapi", "info", "jsonSchemaDialect", "servers", "paths", "webhooks", "components",
                             "security", "tags", "externalDocs"}
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    assert document["security"] == [{"bearer": []}]
    operation_ids = []
    for path, item in document["paths"].items():
        assert path.startswith("/v1/outbound/jobs")
        templated = set(re.findall(r"\{(\w+)\}", path))
        for method, operation in item.items():
            assert method in METHODS, (path, method)
            operation_ids.append(operation["operationId"])
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == templated, f"{method} {path}: path parameters"
            for parameter in operation.get("parameters", []):
                assert parameter["in"] in {"path", "query", "header", "cookie"} and "schema" in parameter
                assert parameter["in"] != "path" or parameter["required"] is True
            responses = operation["responses"]
            assert all(re.fullmatch(r"[1-5]\d\d", code) for code in responses)
            assert {"401", "503"} <= set(responses), f"{method} {path}: every operation needs a token"
            for answer in responses.values():
                assert answer["description"]
                assert set(answer.get("content", {})) <= {"application/json"}
    assert len(operation_ids) == len(set(operation_ids)) == 4
    post = document["paths"]["/v1/outbound/jobs"]["post"]
    assert {"200", "201", "401", "409", "413", "415", "422"} <= set(post["responses"])
    assert "Location" in post["responses"]["201"]["headers"]
    assert "404" in document["paths"]["/v1/outbound/jobs/{id}"]["get"]["responses"]
    assert "404" in document["paths"]["/v1/outbound/jobs/{id}/cancel"]["post"]["responses"]
    for ref in refs(document):
        resolve(document, ref)
    used = {ref.rsplit("/", 1)[1] for ref in refs(document)}
    assert used == set(document["components"]["schemas"]), "no schema unused, none missing"


def test_the_request_schema_carries_the_rules_of_each_field() -> None:
    document = openapi_document()
    schema = document["components"]["schemas"]["JobRequest"]
    assert set(schema["properties"]) == set(JobRequest.model_fields)
    assert schema["additionalProperties"] is False and set(schema["required"]) == {"kind", "to"}
    for name, field in JobRequest.model_fields.items():
        if field.description:
            assert schema["properties"][name]["description"] == field.description, name
    assert "500 characters" in schema["properties"]["message"]["description"]
    assert "4-12 digits" in schema["properties"]["code"]["description"]
    assert resolve(document, schema["properties"]["kind"]["$ref"])["enum"] == ["notice", "bridge"]


def test_the_schemas_are_json_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="comes with check-jsonschema (dev extra)")
    for schema in openapi_document()["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)


async def test_a_real_job_view_and_errors_fit_their_schemas(tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="comes with check-jsonschema (dev extra)")
    document = openapi_document()

    def validator(name: str) -> Any:
        schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
        return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())

    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with serving(tmp_path) as (_, http, store):
        job = (await http.post("/v1/outbound/jobs", headers=auth, json={
            "kind": "notice", "to": "5551234", "message": "Hello.", "code": "123456",
            "not_before": (datetime.now(UTC) + timedelta(days=1)).astimezone(timezone(timedelta(hours=1))).isoformat(),
        })).json()
        now = time.time()
        await store.start_attempt(Attempt(job_id=job["id"], number=1, platform="asterisk", started=now), "dialing")
        await store.update_attempt(Attempt(job_id=job["id"], number=1, platform="asterisk", started=now,
                                           state=JobState.BUSY, ended=now + 5, reason="busy",
                                           refs={"ActionID": f"{job['id']}-1"}))
        shown = (await http.get(f"/v1/outbound/jobs/{job['id']}", headers=auth)).json()
        page = (await http.get("/v1/outbound/jobs", headers=auth)).json()
        answers = [
            await http.get("/v1/outbound/jobs"),
            await http.get("/v1/outbound/jobs/nope", headers=auth),
            await http.post("/v1/outbound/jobs", headers=auth, json={"kind": "notice"}),
            await http.post("/v1/outbound/jobs", headers={**auth, "Content-Type": "text/plain"}, content=b"x"),
        ]
    assert shown["attempts"] and shown["history"], "the view under test has an attempt and a history"
    for instance, name in [(job, "Job"), (shown, "Job"), (page, "JobPage")]:
        errors = [error.message for error in validator(name).iter_errors(instance)]
        assert errors == [], name
    for answer in answers:
        assert answer.status_code in {401, 404, 415, 422}
        assert [error.message for error in validator("Error").iter_errors(answer.json())] == []
