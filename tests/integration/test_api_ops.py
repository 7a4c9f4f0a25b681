"""The operator endpoints over a real server: /healthz, /readyz, /metrics and /openapi.json."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bridge.api.openapi import openapi_document
from bridge.api.routes import OPERATIONS, routes
from bridge.store import Store
from tests.integration.api_support import running_api

DOCUMENT = openapi_document(OPERATIONS)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/bridge.db"


async def test_api_healthz_needs_no_auth(sqlite_url: str) -> None:
    async with running_api(sqlite_url) as api:
        response = await api.http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["X-Request-Id"].startswith("req_")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_api_readyz_when_ready(sqlite_url: str) -> None:
    async with running_api(sqlite_url, background=True) as api:
        response = await api.http.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"storage": "ok", "scheduler": "ok"}}


async def test_api_readyz_without_scheduler(sqlite_url: str) -> None:
    async with running_api(sqlite_url, background=False) as api:
        response = await api.http.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"storage": "ok", "scheduler": "not running"},
    }


class _DeadStore(Store):
    async def ping(self) -> None:
        raise ConnectionRefusedError("no database")


async def test_api_readyz_without_storage(sqlite_url: str) -> None:
    async with running_api(
        sqlite_url, background=True, store=lambda real: _DeadStore(real.db)
    ) as api:
        response = await api.http.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"storage": "unreachable", "scheduler": "ok"}


def _samples(text: str) -> dict[tuple[str, ...], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "bridge_api_requests_total":
                labels = sample.labels
                out[(labels["method"], labels["route"], labels["status"])] = sample.value
    return out


async def test_api_metrics_count_requests_by_route_template(sqlite_url: str) -> None:
    async with running_api(sqlite_url) as api:
        await api.create()
        for _ in range(2):
            await api.http.get(f"/v1/watches/wat_{uuid.uuid4().hex}", headers=api.auth())
        await api.http.get("/v1/watches")
        await api.http.get("/no/such/page")
        await api.http.request("BREW", "/healthz")
        response = await api.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)
    assert samples[("POST", "/v1/watches", "201")] == 1
    assert samples[("GET", "/v1/watches/{watch_id}", "404")] == 2
    assert samples[("GET", "/v1/watches", "401")] == 1
    assert samples[("GET", "unmatched", "404")] == 1
    assert samples[("other", "/healthz", "405")] == 1


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def _resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


async def test_api_openapi_describes_every_route(sqlite_url: str) -> None:
    async with running_api(sqlite_url) as api:
        response = await api.http.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    served = {
        (route.path, method.lower())
        for route in routes()
        for method in route.methods or ()  # type: ignore[attr-defined]
        if method != "HEAD"
    }
    described = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert described == served
    assert document == DOCUMENT
    for ref in _refs(document):
        assert _resolve(document, ref) is not None, ref
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
    }


@pytest.mark.parametrize(
    ("path", "method", "statuses"),
    [
        (
            "/v1/watches",
            "post",
            {"201", "400", "401", "403", "404", "409", "413", "422", "429", "503"},
        ),
        ("/v1/imports", "post", {"201", "400", "401", "403", "413", "422", "429", "503"}),
        ("/v1/imports", "get", {"200", "400", "401", "413", "429", "503"}),
        ("/v1/imports/{import_id}", "get", {"200", "401", "404", "413", "429", "503"}),
        ("/v1/imports/{import_id}", "delete", {"200", "401", "404", "413", "429", "503"}),
        (
            "/v1/imports/{import_id}/jobs",
            "post",
            {"201", "400", "401", "404", "409", "413", "429", "503"},
        ),
        ("/v1/imports/{import_id}/close", "post", {"200", "401", "404", "413", "429", "503"}),
        (
            "/v1/imports/{import_id}/failures",
            "get",
            {"200", "400", "401", "404", "413", "429", "503"},
        ),
        ("/v1/ops/imports", "get", {"200", "400", "401", "413", "429", "503"}),
        ("/v1/ops/imports/{import_id}", "get", {"200", "401", "404", "413", "429", "503"}),
        ("/v1/watches", "get", {"200", "400", "401", "413", "429", "503"}),
        ("/v1/watches/{watch_id}", "get", {"200", "401", "404", "413", "429", "503"}),
        ("/v1/watches/{watch_id}", "delete", {"200", "401", "404", "413", "429", "503"}),
        ("/v1/watches/{watch_id}/events", "get", {"200", "401", "404", "413", "429", "503"}),
        ("/v1/watches/{watch_id}/deliveries", "get", {"200", "401", "404", "413", "429", "503"}),
        (
            "/v1/deliveries/{delivery_id}/retry",
            "post",
            {"202", "401", "404", "409", "413", "429", "503"},
        ),
        ("/upstream/{account}/signals", "post", {"202", "400", "401", "413", "503"}),
        ("/healthz", "get", {"200"}),
        ("/readyz", "get", {"200", "503"}),
        ("/metrics", "get", {"200"}),
        ("/openapi.json", "get", {"200"}),
    ],
)
def test_api_openapi_lists_each_status(path: str, method: str, statuses: set[str]) -> None:
    operation = DOCUMENT["paths"][path][method]
    assert set(operation["responses"]) == statuses
    assert operation.get("security", None) == ([] if not path.startswith("/v1") else None)
    if "503" in statuses and path != "/readyz":
        ref = operation["responses"]["503"]["$ref"]
        unavailable = _resolve(DOCUMENT, ref)
        assert unavailable["headers"]["Retry-After"]["required"] is True
        assert "storage_unavailable" in unavailable["description"]


def test_api_openapi_request_body_is_the_validating_model() -> None:
    document = DOCUMENT
    operation = document["paths"]["/v1/watches"]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = _resolve(document, ref)
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["job_id"]
    assert set(schema["properties"]) == {
        "job_id",
        "account",
        "webhook_url",
        "events",
        "metadata",
        "import_id",
    }
    names = {p.get("name") or p["$ref"].rsplit("/", 1)[1] for p in operation["parameters"]}
    assert names == {"IdempotencyKey", "RequestId"}
    listing = document["paths"]["/v1/watches"]["get"]["parameters"]
    query = {p["name"]: p["schema"] for p in listing if p.get("in") == "query"}
    assert query["limit"] == {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}
    assert query["status"]["enum"] == ["active", "completed", "expired", "failed", "cancelled"]


async def test_api_errors_are_never_sniffed_as_html(sqlite_url: str) -> None:
    async with running_api(sqlite_url) as api:
        refused = await api.http.get("/v1/watches", headers={"Authorization": "Bearer <b>x</b>"})
        missing = await api.http.get("/no/such/<script>")
    for response in (refused, missing):
        assert response.status_code in (401, 404)
        assert response.headers["X-Content-Type-Options"] == "nosniff"
