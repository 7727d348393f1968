"""The OpenAPI 3.1 document of the outbound jobs API, served at `/v1/openapi.json`.

It describes the four operations of `ivr.web._outbound` and nothing else: `/healthz`, `/metrics`
and `/media` are for probes and platforms, not API clients. The request schema is
`JobRequest.model_json_schema()`, so the rules a client reads are the rules the service checks;
the job view is written out here, because it is a promise to clients that must not change by
accident with the internal `Job` model (tests/web/test_openapi.py holds a real view to it).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from ivr.outbound import JobKind, JobRequest, JobState

JOBS_PATH = "/v1/outbound/jobs"
JOB_PATH = "/v1/outbound/jobs/{id}"
CANCEL_PATH = "/v1/outbound/jobs/{id}/cancel"
OPENAPI_PATH = "/v1/openapi.json"

_REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


def _nullable(schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"anyOf": [schema, {"type": "null"}]}
    if description:
        out["description"] = description
    return out


_TIME = {"type": "string", "format": "date-time"}
_STATES = [state.value for state in JobState]


def _view_schemas() -> dict[str, Any]:
    """What `Job.view()` returns: times in ISO 8601 UTC, the code masked."""
    history = {
        "type": "object",
        "description": "One change of a job's state.",
        "properties": {
            "at": {**_TIME, "description": "when it changed"},
            "state": {"type": "string", "enum": _STATES},
            "reason": {"type": "string"},
            "attempt": _nullable({"type": "integer"}, "the attempt it happened in"),
        },
        "required": ["at", "state", "reason", "attempt"],
        "additionalProperties": False,
    }
    attempt = {
        "type": "object",
        "description": "One call placed for a job, with the platform's references to it.",
        "properties": {
            "id": {"type": "string", "description": "the attempt's id: the job's id, `-`, its number"},
            "job_id": {"type": "string"},
            "number": {"type": "integer", "minimum": 1},
            "platform": {"type": "string"},
            "state": {"type": "string", "enum": _STATES},
            "started": _TIME,
            "ended": _nullable(_TIME),
            "reason": {"type": "string"},
            "refs": {"type": "object", "additionalProperties": {"type": "string"},
                     "description": "the platform's ids: AMI ActionID, ICTCore spool id, Kazoo call id"},
        },
        "required": ["id", "job_id", "number", "platform", "state", "started", "ended", "reason", "refs"],
        "additionalProperties": False,
    }
    job_properties: dict[str, Any] = {
        "id": {"type": "string", "description": "a ULID: sortable by creation time"},
        "kind": {"type": "string", "enum": [kind.value for kind in JobKind]},
        "to": {"type": "string"},
        "message": _nullable({"type": "string"}),
        "code": _nullable({"type": "string", "pattern": r"^\*+[0-9]{2}$"}, "masked, e.g. ****34"),
        "language": {"type": "string"},
        "agent": _nullable({"type": "string"}),
        "via": {"type": "string", "enum": ["asterisk", "ictcore", "kazoo"]},
        "idempotency_key": _nullable({"type": "string"}),
        "not_before": _nullable(_TIME),
        "max_attempts": {"type": "integer", "minimum": 1},
        "state": {"type": "string", "enum": _STATES, "description": "completed, busy, no_answer, failed "
                                                                      "and cancelled are final"},
        "created": _TIME,
        "updated": _TIME,
        "due": _nullable(_TIME, "when the service looks at it next; null once final"),
        "attempts_used": {"type": "integer", "minimum": 0, "description": "calls placed"},
        "unavailable_since": _nullable(_TIME, "since when its platform could not be reached"),
        "cancel_requested": {"type": "boolean", "description": "a cancel came while a call was in progress: "
                                                               "it is not tried again"},
        "reason": {"type": "string", "description": "why it is in its state"},
        "history": {"type": "array", "items": _ref("HistoryEntry")},
        "attempts": {"type": "array", "items": _ref("Attempt")},
    }
    job = {
        "type": "object",
        "description": "A job as clients see it. The code is always masked: only its last two digits show.",
        "properties": job_properties,
        "required": list(job_properties),
        "additionalProperties": False,
    }
    return {"Job": job, "HistoryEntry": history, "Attempt": attempt}


def _error_schemas() -> dict[str, Any]:
    return {
        "Error": {
            "type": "object",
            "description": "What went wrong; `errors` names each field and the rule it broke.",
            "properties": {
                "error": {"type": "string", "enum": ["invalid", "unauthorized", "not_found", "conflict",
                                                     "too_large", "unsupported_media_type", "unavailable"]},
                "errors": {"type": "array", "items": _ref("FieldError")},
            },
            "required": ["error"],
        },
        "FieldError": {
            "type": "object",
            "properties": {
                "field": {"type": "string", "description": "the field (or `body`, or a query parameter)"},
                "rule": {"type": "string", "description": "the rule it broke, in words"},
            },
            "required": ["field", "rule"],
            "additionalProperties": False,
        },
        "JobPage": {
            "type": "object",
            "properties": {
                "jobs": {"type": "array", "items": _ref("Job")},
                "next_cursor": _nullable({"type": "string"}, "pass as `cursor` for the next page; null at the end"),
            },
            "required": ["jobs", "next_cursor"],
            "additionalProperties": False,
        },
    }


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


_ERRORS = {
    "401": {**_error("No bearer token, or not one of this service's: nothing was done"),
            "headers": {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}}},
    "404": _error("No job has that id"),
    "409": _error("The idempotency key was used within 24 h for another request"),
    "413": _error("The body is over 16 KiB"),
    "415": _error("The body is not application/json"),
    "422": _error("The request breaks a rule: each field and rule is in `errors`; nothing was stored"),
    "503": _error("The job store cannot be used right now; try again"),
}


def _errors(*codes: str) -> dict[str, Any]:
    return {code: _ERRORS[code] for code in ("401", *codes, "503")}


def _job(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Job")}}}


_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}, "description": "the job's id"}


def _paths() -> dict[str, Any]:
    return {
        JOBS_PATH: {
            "post": {
                "operationId": "submitJob",
                "summary": "Ask for a call: a notice spoken to a key holder, or a bridge from an agent",
                "parameters": [{
                    "name": "Idempotency-Key", "in": "header", "required": False,
                    "schema": {"type": "string", "minLength": 1, "maxLength": 128},
                    "description": "as the body's idempotency_key: the same key within 24 h returns the same job",
                }],
                "requestBody": {"required": True,
                                "content": {"application/json": {"schema": _ref("JobRequest")}}},
                "responses": {
                    "201": {**_job("A new job, queued"),
                            "headers": {"Location": {"schema": {"type": "string"},
                                                     "description": "the job's URL path"}}},
                    "200": _job("The job this idempotency key already made; no new one"),
                    **_errors("409", "413", "415", "422"),
                },
            },
            "get": {
                "operationId": "listJobs",
                "summary": "Jobs, newest first, a page at a time",
                "parameters": [
                    {"name": "status", "in": "query", "required": False,
                     "schema": {"type": "string", "enum": _STATES}, "description": "only jobs in this state"},
                    {"name": "limit", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}},
                    {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"},
                     "description": "the `next_cursor` of the page before"},
                ],
                "responses": {
                    "200": {"description": "A page of jobs",
                            "content": {"application/json": {"schema": _ref("JobPage")}}},
                    **_errors("422"),
                },
            },
        },
        JOB_PATH: {
            "get": {
                "operationId": "getJob",
                "summary": "One job: where it stands, its history and attempts",
                "parameters": [_ID],
                "responses": {"200": _job("The job"), **_errors("404")},
            },
        },
        CANCEL_PATH: {
            "post": {
                "operationId": "cancelJob",
                "summary": "Cancel a job: a queued one at once; one in a call is not tried again",
                "parameters": [_ID],
                "responses": {"200": _job("The job after the cancel (a final job is left as it was)"),
                              **_errors("404")},
            },
        },
    }


@cache
def openapi_document() -> dict[str, Any]:
    """The whole document (built once; callers must not change it)."""
    request = JobRequest.model_json_schema(ref_template=_REF)
    schemas: dict[str, Any] = request.pop("$defs", {})
    # The model's docstring speaks to developers; the document speaks to clients.
    request["description"] = ("A call to place. A notice needs `message` (and may have `code`); a bridge "
                              "needs `agent`. Every rule broken is answered at once in a 422.")
    request["properties"]["kind"].setdefault(
        "description", "notice: the key holder hears `message` (and `code`); bridge: the agent's phone rings, "
                       "then the key holder's")
    schemas["JobRequest"] = request
    schemas.update(_view_schemas())
    schemas.update(_error_schemas())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "keybox-ivr outbound jobs",
            "version": "1",
            "description": "Ask the key office's phone line to call someone, and follow the call. "
                           "Every operation needs `Authorization: Bearer <token>` (IVR_API_TOKENS).",
        },
        "paths": _paths(),
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "one of the tokens in IVR_API_TOKENS"}},
        },
        "security": [{"bearer": []}],
    }
