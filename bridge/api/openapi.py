"""GET /openapi.json: OpenAPI 3.1 built from the served routes and the models that validate them."""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bridge.api.schemas import IDEMPOTENCY_KEY_PATTERN, ErrorEnvelope

Endpoint = Callable[[Request], Awaitable[Response]]
REF = "#/components/schemas/{model}"
_PATH_PARAM = re.compile(r"{([a-z_]+)}")
_ERROR_TEXT = {
    400: "Invalid request (`invalid_request`): the message names the field.",
    401: "Missing, malformed or unknown bearer token (`invalid_token`), or an upstream signal whose signature does not verify (`invalid_signature`).",
    403: "The client may not watch this account (`account_not_allowed`).",
    404: "Not found (`watch_not_found`, `import_not_found`, `delivery_not_found`); also "
    "another client's.",
    409: "Conflict (`delivery_not_dead`, `watch_cancelled`, `import_closed`).",
    413: "Request body over 64 KiB (`payload_too_large`).",
    422: "The webhook_url is not https or reaches a private network (`unsafe_webhook_url`).",
    429: "Too many requests for this client (`rate_limited`, with Retry-After), or, registering a "
    "watch or adding jobs to an import, the client already has its `max_active_watches` active "
    "watches (`watch_limit_reached`).",
    503: "Storage is unavailable for now (`storage_unavailable`); retry after Retry-After seconds.",
}
_NOT_READY = "Not ready: a check failed."


@dataclass(frozen=True, slots=True, kw_only=True)
class Operation:
    """One route and what the OpenAPI document says about it."""

    method: str
    path: str
    endpoint: Endpoint
    operation_id: str
    summary: str
    status: int
    response: type[BaseModel] | None  # None: a free-form body of `media_type`
    errors: tuple[int, ...] = ()
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    idempotent_key: bool = False
    headers: tuple[tuple[str, str], ...] = ()  # required request headers: (name, description)
    readiness: bool = False  # its 503 carries the response model (which check failed), not an error
    public: bool = False
    tag: str = "watches"
    media_type: str = "application/json"
    also: tuple[tuple[str, str], ...] = ()  # other media types of the success body: (type, text)


def _schemas(operations: Iterable[Operation]) -> dict[str, Any]:
    """Every model's JSON schema under components/schemas, inputs as validated, outputs as sent."""
    modes: dict[type[BaseModel], Literal["validation", "serialization"]] = {
        ErrorEnvelope: "serialization"
    }
    for op in operations:
        for model in (op.body, op.query):
            if model is not None:
                modes[model] = "validation"
        if op.response is not None:
            modes[op.response] = "serialization"
    refs, top = models_json_schema(list(modes.items()), ref_template=REF)
    return {"refs": refs, "defs": top.get("$defs", {})}


def _query_parameters(model: type[BaseModel], defs: dict[str, Any]) -> list[dict[str, Any]]:
    schema = defs[model.__name__]
    required = set(schema.get("required", ()))
    params = []
    for name, original in schema["properties"].items():
        # A query value is never JSON null: an optional field is simply left out.
        branches = [b for b in original.get("anyOf", [original]) if b.get("type") != "null"]
        prop = {
            k: v for k, v in branches[0].items() if k not in ("title", "description", "default")
        }
        if original.get("default") is not None:
            prop["default"] = original["default"]
        params.append(
            {
                "name": name,
                "in": "query",
                "required": name in required,
                "description": model.model_fields[name].description or "",
                "schema": prop,
            }
        )
    return params


def _parameters(op: Operation, defs: dict[str, Any]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAM.findall(op.path)
    ]
    if op.query is not None:
        params += _query_parameters(op.query, defs)
    if op.idempotent_key:
        params.append({"$ref": "#/components/parameters/IdempotencyKey"})
    params += [
        {"name": name, "in": "header", "required": True, "description": text,
         "schema": {"type": "string"}}
        for name, text in op.headers
    ]  # fmt: skip
    params.append({"$ref": "#/components/parameters/RequestId"})
    return params


def _json(ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": ref}}}


def _responses(op: Operation, refs: dict[Any, Any]) -> dict[str, Any]:
    headers: dict[str, Any] = {"X-Request-Id": {"$ref": "#/components/headers/RequestId"}}
    if op.idempotent_key:
        headers["Idempotent-Replayed"] = {
            "description": "`true` when an earlier request with this Idempotency-Key made it.",
            "schema": {"type": "string", "enum": ["true"]},
        }
    if op.response is not None:
        content = _json(refs[(op.response, "serialization")]["$ref"])
    else:
        free_form = "string" if op.media_type.startswith("text/") else "object"
        content = {op.media_type: {"schema": {"type": free_form}}}
    for media_type, text in op.also:
        content[media_type] = {"schema": {"type": "string", "description": text}}
    out: dict[str, Any] = {
        str(op.status): {
            "description": HTTPStatus(op.status).phrase,
            "headers": headers,
            "content": content,
        }
    }
    for status in op.errors:
        if status == 503 and op.readiness:
            out["503"] = {**out[str(op.status)], "description": _NOT_READY}
        else:
            out[str(status)] = {"$ref": f"#/components/responses/Error{status}"}
    return out


def _components(defs: dict[str, Any], statuses: set[int]) -> dict[str, Any]:
    request_id_header = {"description": "The request's id: the caller's, else a new one.",
                         "required": True, "schema": {"type": "string"}}  # fmt: skip
    responses = {}
    for status in sorted(statuses):
        headers: dict[str, Any] = {"X-Request-Id": {"$ref": "#/components/headers/RequestId"}}
        if status == 401:
            headers["WWW-Authenticate"] = {"schema": {"type": "string"}}
        if status == 503:
            headers["Retry-After"] = {"required": True, "schema": {"type": "string"}}
        if status == 429:
            headers["Retry-After"] = {
                "description": "With `rate_limited`: seconds to wait before trying again.",
                "required": False,
                "schema": {"type": "string"},
            }
        responses[f"Error{status}"] = {
            "description": _ERROR_TEXT[status],
            "headers": headers,
            "content": _json(REF.format(model=ErrorEnvelope.__name__)),
        }
    return {
        "schemas": defs,
        "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        "headers": {"RequestId": request_id_header},
        "responses": responses,
        "parameters": {
            "RequestId": {
                "name": "X-Request-Id",
                "in": "header",
                "required": False,
                "description": "Your correlation id, echoed back (at most 160 printable ASCII).",
                "schema": {"type": "string", "maxLength": 160},
            },
            "IdempotencyKey": {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "Repeating a request with the same key returns the same watch "
                "(or import), again with 201 (and `Idempotent-Replayed: true`).",
                "schema": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 255,
                    "pattern": IDEMPOTENCY_KEY_PATTERN,
                },
            },
        },
    }


def _operation(op: Operation, refs: dict[Any, Any], defs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": _parameters(op, defs),
        "responses": _responses(op, refs),
    }
    if op.public:
        out["security"] = []
    if op.body is not None:
        ref = refs[(op.body, "validation")]["$ref"]
        out["requestBody"] = {"required": True, "content": _json(ref)}
    return out


@functools.cache
def openapi_document(operations: tuple[Operation, ...]) -> dict[str, Any]:
    """The OpenAPI 3.1 document for these operations."""
    built = _schemas(operations)
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(
            op, built["refs"], built["defs"]
        )
    statuses = {s for op in operations for s in op.errors if s != 503 or not op.readiness}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "photo-bridge",
            "version": "1",
            "description": "Watches AI Gen Studio Product Photo jobs and delivers every change.",
        },
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": _components(built["defs"], statuses),
    }


async def serve_openapi(request: Request) -> Response:
    """GET /openapi.json: the document for the routes this app serves."""
    operations = tuple(
        route.operation
        for route in request.app.routes
        if isinstance(getattr(route, "operation", None), Operation)
    )
    return JSONResponse(openapi_document(operations))
