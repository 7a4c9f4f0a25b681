"""Every error of the watches API over a real server: one envelope, the right status, never a 500."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from bridge.api.ratelimit import RateLimiter
from bridge.store import Store
from bridge.store.database import Database
from bridge.store.watches import Watches
from tests.integration.api_support import Api, running_api

# One server for the whole module: these tests only read or add watches of their own.
pytestmark = pytest.mark.asyncio(loop_scope="module")

JOB = "0b6f6a4e-3c1a-4c8e-9a59-2f0d8c1e5b7a"
GENERATED_ID = re.compile(r"req_[0-9a-f]{24}")
UNLIMITED = RateLimiter(rate_per_s=1e9, burst=10**9)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    folder = tmp_path_factory.mktemp("api-errors")
    async with running_api(f"sqlite:///{folder}/bridge.db", rate_limiter=UNLIMITED) as running:
        yield running


def assert_error(response: httpx.Response, status: int, code: str) -> str:
    """Check the envelope and the request id; return the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "request_id"}
    assert body["error"]["code"] == code
    assert body["error"]["request_id"] == response.headers["X-Request-Id"]
    assert body["error"]["message"]
    return str(body["error"]["message"])


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Basic c2hvcDpzZWNyZXQ=",
        "Bearer",
        "Token shop-token-0001",
        "Bearer a b",
        "Bearer x",
    ],
)
async def test_api_rejects_a_bad_bearer(api: Api, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    for method, path in [("GET", "/v1/watches"), ("POST", "/v1/watches"), ("GET", "/v1/nope")]:
        response = await api.http.request(method, path, headers=headers, json={"job_id": JOB})
        message = assert_error(response, 401, "invalid_token")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "shop-token" not in message


async def test_api_token_of_one_client_is_not_a_prefix_match(api: Api) -> None:
    response = await api.http.get(
        "/v1/watches", headers={"Authorization": "Bearer shop-token-00011"}
    )
    assert_error(response, 401, "invalid_token")


async def test_api_request_id_is_echoed(api: Api) -> None:
    given = "trace-" + "x" * 154
    ok = await api.http.get("/v1/watches", headers=api.auth(**{"X-Request-Id": given}))
    failed = await api.http.get("/v1/watches", headers={"X-Request-Id": "abc 123"})
    assert ok.headers["X-Request-Id"] == given
    assert failed.headers["X-Request-Id"] == "abc 123"
    assert failed.json()["error"]["request_id"] == "abc 123"


@pytest.mark.parametrize("given", [b"y" * 161, b"caf\xc3\xa9", b"a\tb", None])
async def test_api_request_id_is_generated_otherwise(api: Api, given: bytes | None) -> None:
    headers = {} if given is None else {"X-Request-Id": given}
    first = await api.http.get("/healthz", headers=headers)
    second = await api.http.get("/healthz", headers=headers)
    assert GENERATED_ID.fullmatch(first.headers["X-Request-Id"])
    assert first.headers["X-Request-Id"] != second.headers["X-Request-Id"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "job_id"),
        ({"job_id": "nope"}, "job_id"),
        ({"job_id": JOB[:-1]}, "job_id"),
        ({"job_id": JOB + "\n"}, "job_id"),  # Python's `$` also matches before a final newline
        ({"job_id": "\n" + JOB}, "job_id"),
        ({"job_id": 123}, "job_id"),
        ({"job_id": None}, "job_id"),
        ({"job_id": [JOB]}, "job_id"),
        ({"job_id": {"a": [[[{"b": None}]]]}}, "job_id"),
        ({"job_id": JOB, "colour": "red"}, "colour"),
        ({"job_id": JOB, "account": ""}, "account"),
        ({"job_id": JOB, "account": 7}, "account"),
        ({"job_id": JOB, "events": []}, "events"),
        ({"job_id": JOB, "events": "job.*"}, "events"),
        ({"job_id": JOB, "events": ["item.faild"]}, "events[0]"),
        ({"job_id": JOB, "events": ["*", None]}, "events[1]"),
        ({"job_id": JOB, "events": ["*"] * 21}, "events"),
        ({"job_id": JOB, "metadata": []}, "metadata"),
        ({"job_id": JOB, "metadata": {str(i): "v" for i in range(21)}}, "metadata"),
        ({"job_id": JOB, "metadata": {"k" * 41: "v"}}, "metadata"),
        ({"job_id": JOB, "metadata": {"": "v"}}, "metadata"),
        ({"job_id": JOB, "metadata": {"k": "v" * 501}}, "metadata.k"),
        ({"job_id": JOB, "metadata": {"k": 1}}, "metadata.k"),
        ({"job_id": JOB, "metadata": {"k": "a\u0000b"}}, "metadata.k"),
        ({"job_id": JOB, "webhook_url": "not a url"}, "webhook_url"),
        ({"job_id": JOB, "webhook_url": "/relative/path"}, "webhook_url"),
        ({"job_id": JOB, "webhook_url": "https://hooks.example.com/" + "a" * 2030}, "webhook_url"),
        ({"job_id": JOB, "webhook_url": 5}, "webhook_url"),
        ([], "body"),
        ("job", "body"),
    ],
)
async def test_api_create_names_the_bad_field(api: Api, body: Any, field: str) -> None:
    response = await api.http.post("/v1/watches", json=body, headers=api.auth())
    message = assert_error(response, 400, "invalid_request")
    assert message.startswith((f"{field}: ", f"{field} key ")), message


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b'{"job_id": ',
        b'{"job_id": "\xff\xfe"}',
        b"\xff\xfe\x00{",
        b"[" * 20_000,
        b'{"job_id": ' + b"9" * 20_000 + b"}",
        b'{"job_id": 1e999999}',
        b'{"job_id": "\\ud800"}',
        b"NaN",
        b"null",
    ],
)
async def test_api_create_survives_malformed_bodies(api: Api, raw: bytes) -> None:
    response = await api.http.post(
        "/v1/watches",
        content=raw,
        headers=api.auth(**{"Content-Type": "application/json"}),
    )
    message = assert_error(response, 400, "invalid_request")
    assert message.startswith(("body: ", "job_id: "))


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
async def test_api_create_needs_a_json_content_type(api: Api, content_type: str | None) -> None:
    headers = api.auth(**({"Content-Type": content_type} if content_type else {}))
    response = await api.http.post(
        "/v1/watches", content=json.dumps({"job_id": JOB}).encode(), headers=headers
    )
    assert assert_error(response, 400, "invalid_request").startswith("Content-Type: ")


async def test_api_create_accepts_json_with_charset(api: Api) -> None:
    response = await api.http.post(
        "/v1/watches",
        content=json.dumps({"job_id": JOB}).encode(),
        headers=api.auth(**{"Content-Type": "application/json; charset=utf-8"}),
    )
    assert response.status_code == 201


async def test_api_webhook_needs_client_secrets(api: Api) -> None:
    response = await api.create("bare", webhook_url="https://hooks.example.com/x")
    message = assert_error(response, 400, "invalid_request")
    assert message == "webhook_url: client has no webhook_secrets configured"


@pytest.mark.parametrize(
    ("client", "account"), [("shop", "second"), ("shop", "nope"), ("studio", "missing")]
)
async def test_api_account_not_allowed(api: Api, client: str, account: str) -> None:
    response = await api.create(client, account=account)
    assert account in assert_error(response, 403, "account_not_allowed")


@pytest.mark.parametrize("host", ["internal.example.com", "mixed.example.com"])
async def test_api_unsafe_webhook_url_does_not_tell_what_a_name_resolves_to(
    api: Api, host: str
) -> None:
    # A client must not map the bridge's internal DNS: the kind of address, not the address.
    response = await api.create(webhook_url=f"https://{host}/hook")
    message = assert_error(response, 422, "unsafe_webhook_url")
    assert "192.168." not in message and "10.1.2.3" not in message


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/x", "https"),
        ("ftp://hooks.example.com/x", "https"),
        ("https://127.0.0.1/hook", "loopback"),
        ("https://10.0.0.1/hook", "private"),
        ("https://[::1]/hook", "loopback"),
        ("https://internal.example.com/hook", "resolves to a private address"),
        ("https://mixed.example.com/hook", "resolves to a private address"),
        ("https://unknown.example.com/hook", "resolve"),
        ("https://127.0.0.1:9001/hook", "loopback"),
        ("http://127.0.0.1:9001/hook", "https"),
    ],
)
async def test_api_refuses_unsafe_webhook_urls(api: Api, url: str, reason: str) -> None:
    response = await api.create(webhook_url=url)
    message = assert_error(response, 422, "unsafe_webhook_url")
    assert message.startswith("webhook_url: ")
    assert reason in message


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "abc"},
        {"limit": "1e999"},
        {"limit": "9" * 5000},
        {"status": "bogus"},
        {"status": ""},
        {"cursor": "not-a-cursor"},
        {"cursor": "wat_" + "0" * 31 + "\u00fc"},
    ],
)
async def test_api_list_rejects_bad_query(api: Api, params: dict[str, str]) -> None:
    response = await api.http.get("/v1/watches", params=params, headers=api.auth())
    message = assert_error(response, 400, "invalid_request")
    assert message.startswith(f"{next(iter(params))}: ")


WEIRD_IDS = [
    "wat_x",
    "wat_" + "0" * 32,
    "%00",
    "%ff%fe",
    "%E2%80%AE",
    "\u00fc\u00f1\u00ee",
    "a" * 3000,
    "wat_%27%20OR%201%3D1--",
    "null",
    "-1",
]


@pytest.mark.parametrize("watch_id", WEIRD_IDS)
async def test_api_unknown_watch_ids_are_404(api: Api, watch_id: str) -> None:
    base = f"/v1/watches/{watch_id}"
    for method, path in [
        ("GET", base),
        ("DELETE", base),
        ("GET", base + "/events"),
        ("GET", base + "/deliveries"),
    ]:
        response = await api.http.request(method, path, headers=api.auth())
        assert_error(response, 404, "watch_not_found")
    retried = await api.http.post(
        f"/v1/deliveries/{watch_id.replace('wat', 'dlv')}/retry", headers=api.auth()
    )
    assert_error(retried, 404, "delivery_not_found")


async def test_api_unknown_route_and_method(api: Api) -> None:
    unknown = await api.http.get("/v2/everything", headers=api.auth())
    public_unknown = await api.http.get("/nothing-here")
    wrong_method = await api.http.put("/v1/watches", headers=api.auth())
    assert_error(unknown, 404, "not_found")
    assert_error(public_unknown, 404, "not_found")
    assert_error(wrong_method, 405, "method_not_allowed")
    assert wrong_method.headers["Allow"] == "GET, HEAD, POST"


@pytest.mark.parametrize("path", ["/healthz/", "/v1/watches/", "/openapi.json/"])
async def test_api_trailing_slash_is_not_found_not_a_redirect_to_the_host_header(
    api: Api, path: str
) -> None:
    # Starlette's slash redirect builds its Location from the Host header the caller sent.
    response = await api.http.get(path, headers=api.auth(Host="evil.example"))
    assert_error(response, 404, "not_found")
    assert "location" not in response.headers


def _body_of(size: int) -> bytes:
    """A valid create body padded with whitespace to exactly `size` bytes."""
    core = json.dumps({"job_id": JOB}).encode()
    return core[:-1] + b" " * (size - len(core)) + b"}"


async def test_api_body_limit_by_content_length(api: Api) -> None:
    headers = api.auth(**{"Content-Type": "application/json"})
    at_limit = await api.http.post("/v1/watches", content=_body_of(64 * 1024), headers=headers)
    over = await api.http.post("/v1/watches", content=_body_of(64 * 1024 + 1), headers=headers)
    assert at_limit.status_code == 201
    assert_error(over, 413, "payload_too_large")


async def test_api_body_limit_counts_chunked_bytes(api: Api) -> None:
    async def chunks(total: int) -> AsyncIterator[bytes]:
        body = _body_of(total)
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    headers = api.auth(**{"Content-Type": "application/json"})
    at_limit = await api.http.post("/v1/watches", content=chunks(64 * 1024), headers=headers)
    over = await api.http.post("/v1/watches", content=chunks(200 * 1024), headers=headers)
    assert at_limit.status_code == 201
    assert "content-length" not in at_limit.request.headers
    assert over.request.headers["transfer-encoding"] == "chunked"
    assert_error(over, 413, "payload_too_large")


async def test_api_rate_limits_each_client(tmp_path: Path) -> None:
    ticks = [0.0]
    limiter = RateLimiter(rate_per_s=0.5, burst=3, clock=lambda: ticks[0])
    async with running_api(f"sqlite:///{tmp_path}/bridge.db", rate_limiter=limiter) as api:
        burst = [await api.http.get("/v1/watches", headers=api.auth()) for _ in range(4)]
        other_client = await api.http.get("/v1/watches", headers=api.auth("studio"))
        ticks[0] += 2.0
        refilled = await api.http.get("/v1/watches", headers=api.auth())
    assert [r.status_code for r in burst] == [200, 200, 200, 429]
    assert_error(burst[3], 429, "rate_limited")
    assert burst[3].headers["Retry-After"] == "2"
    assert other_client.status_code == 200
    assert refilled.status_code == 200


class _BrokenWatches(Watches):
    async def get(self, **_: Any) -> None:  # type: ignore[override]
        raise RuntimeError("database on fire")


class _BrokenStore(Store):
    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.watches = _BrokenWatches(db)


async def test_api_real_bugs_are_500_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_api(
        f"sqlite:///{tmp_path}/bridge.db", store=lambda real: _BrokenStore(real.db)
    ) as api:
        with caplog.at_level(logging.ERROR, logger="bridge.api.middleware"):
            response = await api.http.get(f"/v1/watches/wat_{uuid.uuid4().hex}", headers=api.auth())
    message = assert_error(response, 500, "internal_error")
    assert "fire" not in message
    logged = [r for r in caplog.records if r.getMessage() == "unhandled error in request"]
    assert logged
    assert logged[0].request_id == response.headers["X-Request-Id"]  # type: ignore[attr-defined]
