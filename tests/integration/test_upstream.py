"""UpstreamClient against a scripted AI Gen Studio stand-in over real HTTP, both transports."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bridge.devtools.localserver import serving
from bridge.events.snapshot import ItemSnapshot, JobSnapshot
from bridge.polling.outcomes import (
    ConnectionFailed,
    Malformed,
    NotFound,
    Ok,
    RateLimit,
    RateLimited,
    ServerError,
    TimedOut,
    Unauthorized,
)
from bridge.polling.upstream import UpstreamClient, make_transport
from bridge.polling.wire import MAX_BODY_BYTES, Borrowed, HttpxWire, SessionWire

KEY = "aigen_test_s3cr3t-Kx9QvT2mZp"
JOB_ID = "6f1c1d2e-8a4b-4c3d-9e8f-0a1b2c3d4e5f"
ITEM_1 = "0b9d6a4e-1111-4c3d-9e8f-0a1b2c3d4e5f"
ITEM_2 = "0b9d6a4e-2222-4c3d-9e8f-0a1b2c3d4e5f"
NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)


def job_body(**job: Any) -> dict[str, Any]:
    """A 200 body as the API documents it, with `job` fields overridden."""
    base = {
        "id": JOB_ID,
        "status": "processing",
        "total_items": 2,
        "credits_reserved": 2,
        "sandbox": True,
        "completed_items": 1,
        "failed_items": 0,
        "credits_used": 1,
        "items": [
            {
                "id": ITEM_1,
                "external_id": "sku-1",
                "status": "completed",
                "credits_reserved": 1,
                "credits_used": 1,
                "result_url": "https://cdn.example/r1.png",
                "thumbnail_url": "https://cdn.example/t1.png",
                "error_code": None,
                "error_message": None,
            },
            {"id": ITEM_2, "external_id": None, "status": "processing"},
        ],
    }
    return {"job": {**base, **job}, "request_id": "req_up_200"}


def error_body(code: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": code, "request_id": f"req_up_{code}"}}


@dataclass
class Reply:
    """One scripted answer; `hang` holds it until the test ends."""

    status: int = 200
    body: Any = None  # bytes/str as is; anything else as JSON
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False


@dataclass(frozen=True)
class Seen:
    raw_path: str
    headers: dict[str, str]
    client_port: int
    query: str = ""


class StandIn:
    """A Starlette app that answers queued replies in order and records every request."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.seen: list[Seen] = []
        self.release = asyncio.Event()
        self.url = ""
        self.app = Starlette(routes=[Route("/{path:path}", self.handle)])

    def queue(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    async def handle(self, request: Request) -> Response:
        assert request.client is not None
        raw_path = request.scope["raw_path"].decode()
        query = request.scope["query_string"].decode()
        self.seen.append(Seen(raw_path, dict(request.headers), request.client.port, query))
        if not self.replies:
            return Response("nothing queued", status_code=599)
        reply = self.replies.popleft()
        if reply.hang:
            async with asyncio.timeout(10):  # bounded, but released at teardown long before
                await self.release.wait()
        body = reply.body
        if not isinstance(body, bytes | str):
            body = json.dumps(body)
        return Response(body, status_code=reply.status, headers=reply.headers)


@pytest.fixture
async def standin() -> AsyncIterator[StandIn]:
    stand = StandIn()
    async with serving(stand.app) as server:
        stand.url = server.url
        try:
            yield stand
        finally:
            stand.release.set()


@pytest.fixture(params=["httpx", "aiohttp"])
def transport_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make_client(
    standin: StandIn, transport_kind: str
) -> AsyncIterator[Callable[..., UpstreamClient]]:
    made: list[UpstreamClient] = []

    def make(**overrides: Any) -> UpstreamClient:
        options: dict[str, Any] = {
            "base_url": standin.url + "/api/v1",
            "api_key": KEY,
            "timeout_s": 5.0,
            "transport": make_transport(transport_kind),
            "now": lambda: NOW,
            **overrides,
        }
        made.append(UpstreamClient(**options))
        return made[-1]

    yield make
    for client in made:
        await client.aclose()


@pytest.fixture
async def client(make_client: Callable[..., UpstreamClient]) -> UpstreamClient:
    return make_client()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound but not listening, so connecting is refused and nobody else can take it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


async def test_fetch_job_parses_a_full_job(client: UpstreamClient, standin: StandIn) -> None:
    standin.queue(Reply(body=job_body()))
    outcome = await client.fetch_job(JOB_ID)
    assert outcome == Ok(
        JobSnapshot(
            id=JOB_ID,
            status="processing",
            total_items=2,
            completed_items=1,
            failed_items=0,
            credits_used=1,
            items=(
                ItemSnapshot(
                    id=ITEM_1,
                    status="completed",
                    external_id="sku-1",
                    result_url="https://cdn.example/r1.png",
                    thumbnail_url="https://cdn.example/t1.png",
                    credits_used=1,
                ),
                ItemSnapshot(id=ITEM_2, status="processing"),
            ),
        ),
        rate_limit=None,
        request_id="req_up_200",
        status_code=200,
    )


@pytest.mark.parametrize(
    ("job", "expected_status"),
    [
        ({"status": None}, None),
        ({"status": "upscaling"}, "upscaling"),
        ({"status": "queued", "priority": "high", "nested": {"x": [1]}}, "queued"),
    ],
    ids=["null-status", "unknown-status", "extra-fields"],
)
async def test_fetch_job_tolerates_status_gaps_and_new_fields(
    client: UpstreamClient, standin: StandIn, job: dict[str, Any], expected_status: str | None
) -> None:
    standin.queue(Reply(body=job_body(**job)))
    outcome = await client.fetch_job(JOB_ID)
    assert isinstance(outcome, Ok)
    assert outcome.snapshot.status == expected_status
    assert len(outcome.snapshot.items) == 2


async def test_fetch_job_tolerates_a_missing_status_key(
    client: UpstreamClient, standin: StandIn
) -> None:
    body = job_body()
    del body["job"]["status"]
    standin.queue(Reply(body=body))
    outcome = await client.fetch_job(JOB_ID)
    assert isinstance(outcome, Ok)
    assert outcome.snapshot.status is None


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (Reply(401, error_body("invalid_api_key")), Unauthorized),
        (Reply(404, error_body("job_not_found")), NotFound),
        (Reply(500, error_body("internal")), ServerError),
        (Reply(502, "<html>Bad Gateway</html>"), ServerError),
        (Reply(403, error_body("forbidden")), ServerError),
        (Reply(302, b"", {"Location": "https://elsewhere.example/"}), ServerError),
    ],
    ids=["401", "404", "500", "502-html", "403", "302"],
)
async def test_fetch_job_maps_status_codes(
    client: UpstreamClient, standin: StandIn, reply: Reply, kind: type
) -> None:
    standin.queue(reply)
    outcome = await client.fetch_job(JOB_ID)
    assert type(outcome) is kind
    assert outcome.status_code == reply.status
    if isinstance(reply.body, dict):
        assert outcome.request_id == reply.body["error"]["request_id"]


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        ("30", 30.0),
        ("Sat, 28 Nov 2026 12:01:30 GMT", 90.0),
        ("Sat, 28 Nov 2026 11:00:00 GMT", 0.0),
        ("soon", None),
    ],
    ids=["seconds", "http-date", "http-date-past", "unreadable"],
)
async def test_fetch_job_reads_retry_after_on_429(
    client: UpstreamClient, standin: StandIn, retry_after: str, expected: float | None
) -> None:
    standin.queue(Reply(429, error_body("rate_limited"), {"Retry-After": retry_after}))
    outcome = await client.fetch_job(JOB_ID)
    assert isinstance(outcome, RateLimited)
    assert outcome.retry_after_s == expected
    assert outcome.request_id == "req_up_rate_limited"


async def test_fetch_job_parses_rate_limit_headers(
    client: UpstreamClient, standin: StandIn
) -> None:
    headers = {
        "X-RateLimit-Limit": "120",
        "X-RateLimit-Remaining": "17",
        "X-RateLimit-Reset": "1795870800",
    }
    standin.queue(Reply(body=job_body(), headers=headers), Reply(429, headers=headers))
    ok = await client.fetch_job(JOB_ID)
    limited = await client.fetch_job(JOB_ID)
    expected = RateLimit(limit=120, remaining=17, reset_at=datetime(2026, 11, 28, 13, tzinfo=UTC))
    assert ok.rate_limit == expected
    assert limited.rate_limit == expected


async def test_fetch_job_drops_insane_rate_limit_headers(
    client: UpstreamClient, standin: StandIn
) -> None:
    headers = {"X-RateLimit-Limit": "lots", "X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "-1"}
    standin.queue(Reply(body=job_body(), headers=headers))
    outcome = await client.fetch_job(JOB_ID)
    assert outcome.rate_limit == RateLimit(limit=None, remaining=3, reset_at=None)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"\x00\xffnot json", "body is not JSON"),
        ("<html>maintenance</html>", "body is not JSON"),
        (b"", "body is not JSON"),
        ({"request_id": "r"}, "job: expected an object"),
        ({"job": {"status": "queued"}}, "job.id: expected a non-empty string"),
        ({"job": {"id": JOB_ID, "total_items": "20"}}, "job.total_items"),
        ({"job": {"id": JOB_ID, "items": {}}}, "job.items: expected an array"),
        ({"job": {"id": "another-job"}}, "job.id is not the requested job"),
    ],
    ids=["garbage", "html", "empty", "no-job", "no-id", "str-counter", "items-object", "other-job"],
)
async def test_fetch_job_reports_unusable_bodies_as_malformed(
    client: UpstreamClient, standin: StandIn, body: Any, error: str
) -> None:
    standin.queue(Reply(body=body, headers={"X-Request-Id": "req_up_hdr"}))
    outcome = await client.fetch_job(JOB_ID)
    assert isinstance(outcome, Malformed)
    assert error in outcome.error
    assert outcome.status_code == 200
    assert outcome.request_id in {"req_up_hdr", "r"}


async def test_fetch_job_refuses_an_oversized_body(
    client: UpstreamClient, standin: StandIn
) -> None:
    standin.queue(Reply(body=b" " * (MAX_BODY_BYTES + 1)))
    outcome = await client.fetch_job(JOB_ID)
    assert isinstance(outcome, Malformed)
    assert "too large" in outcome.error


async def test_fetch_job_times_out_on_a_late_answer(
    make_client: Callable[..., UpstreamClient], standin: StandIn
) -> None:
    client = make_client(timeout_s=0.2)
    standin.queue(Reply(body=job_body(), hang=True))
    started = time.monotonic()
    outcome = await client.fetch_job(JOB_ID)
    assert isinstance(outcome, TimedOut)
    assert time.monotonic() - started < 2.0


async def test_fetch_job_reports_a_refused_connection(
    make_client: Callable[..., UpstreamClient], closed_port: int
) -> None:
    client = make_client(base_url=f"http://127.0.0.1:{closed_port}/api/v1")
    outcome = await client.fetch_job(JOB_ID)
    assert isinstance(outcome, ConnectionFailed)
    assert outcome.status_code is None
    assert outcome.error


async def _fetch_from_raw_server(
    make_client: Callable[..., UpstreamClient],
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> object:
    """fetch_job against a bare TCP server answering with `handler` (what no HTTP server sends)."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        client = make_client(base_url=f"http://127.0.0.1:{port}/api/v1")
        return await client.fetch_job(JOB_ID)
    finally:
        server.close()
        await server.wait_closed()


async def test_fetch_job_reports_a_dropped_connection(
    make_client: Callable[..., UpstreamClient],
) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    assert isinstance(await _fetch_from_raw_server(make_client, hang_up), ConnectionFailed)


@pytest.mark.parametrize("suffix", ["/api/v1", "/api/v1/"])
async def test_fetch_job_sends_auth_and_ids_under_the_base_path(
    make_client: Callable[..., UpstreamClient], standin: StandIn, suffix: str
) -> None:
    client = make_client(base_url=standin.url + suffix, user_agent="photo-bridge/test")
    standin.queue(Reply(body=job_body()), Reply(body=job_body()))
    await client.fetch_job(JOB_ID, request_id="req_ours_1")
    await client.fetch_job(JOB_ID)
    first, second = standin.seen
    assert first.raw_path == f"/api/v1/product-photo-jobs/{JOB_ID}"
    assert first.headers["authorization"] == f"Bearer {KEY}"
    assert first.headers["accept"] == "application/json"
    assert first.headers["user-agent"] == "photo-bridge/test"
    assert first.headers["x-request-id"] == "req_ours_1"
    assert second.headers["x-request-id"] not in {"", "req_ours_1"}


async def test_fetch_job_quotes_the_job_id(client: UpstreamClient, standin: StandIn) -> None:
    standin.queue(Reply(404, error_body("job_not_found")))
    await client.fetch_job("a/../b?c")
    assert standin.seen[0].raw_path == "/api/v1/product-photo-jobs/a%2F..%2Fb%3Fc"


async def test_fetch_job_replaces_an_unsendable_request_id(
    client: UpstreamClient, standin: StandIn
) -> None:
    standin.queue(Reply(body=job_body()))
    await client.fetch_job(JOB_ID, request_id="evil\r\nX-Injected: 1")
    sent = standin.seen[0].headers
    assert "x-injected" not in sent
    assert "\n" not in sent["x-request-id"]


async def test_fetch_job_reuses_one_connection(client: UpstreamClient, standin: StandIn) -> None:
    standin.queue(*(Reply(body=job_body()) for _ in range(4)))
    for _ in range(4):
        assert isinstance(await client.fetch_job(JOB_ID), Ok)
    assert len({seen.client_port for seen in standin.seen}) == 1


async def test_upstream_client_keeps_the_key_out_of_repr_and_logs(
    make_client: Callable[..., UpstreamClient],
    standin: StandIn,
    closed_port: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(timeout_s=0.3)
    refused = make_client(base_url=f"http://127.0.0.1:{closed_port}")
    standin.queue(
        Reply(body=job_body()),
        Reply(401, error_body("invalid_api_key")),
        Reply(500, b"oops"),
        Reply(body=b"garbage"),
        Reply(body=job_body(), hang=True),
    )
    outcomes = [await client.fetch_job(JOB_ID) for _ in range(5)]
    outcomes.append(await refused.fetch_job(JOB_ID))
    assert [type(o).__name__ for o in outcomes] == [
        "Ok",
        "Unauthorized",
        "ServerError",
        "Malformed",
        "TimedOut",
        "ConnectionFailed",
    ]
    fetched = [r for r in caplog.records if r.getMessage() == "upstream job fetched"]
    assert [getattr(r, "upstream_request_id", "?") for r in fetched[:2]] == [
        "req_up_200",
        "req_up_invalid_api_key",
    ]
    everything = caplog.text + repr([r.__dict__ for r in caplog.records])
    everything += repr(outcomes) + repr(client) + str(client)
    assert KEY not in everything
    assert KEY[-8:] not in everything


def test_upstream_client_rejects_an_unusable_key_without_echoing_it() -> None:
    key = "aigen_test_sécret"
    with pytest.raises(ValueError) as caught:
        UpstreamClient(base_url="http://127.0.0.1:1", api_key=key, timeout_s=1)
    assert key not in str(caught.value) + repr(caught.value)


def test_make_transport_rejects_unknown_kinds() -> None:
    with pytest.raises(ValueError, match="unknown transport"):
        make_transport("curl")


async def test_fetch_job_decodes_a_gzipped_body(client: UpstreamClient, standin: StandIn) -> None:
    body = gzip.compress(json.dumps(job_body()).encode())
    standin.queue(Reply(body=body, headers={"Content-Encoding": "gzip"}))
    outcome = await client.fetch_job(JOB_ID)
    assert isinstance(outcome, Ok)
    assert outcome.snapshot.id == JOB_ID
    assert "gzip" in standin.seen[0].headers["accept-encoding"]


async def test_fetch_job_reports_a_body_whose_encoding_is_broken(
    client: UpstreamClient, standin: StandIn
) -> None:
    standin.queue(Reply(body=b"not gzip at all" * 10, headers={"Content-Encoding": "gzip"}))
    outcome = await client.fetch_job(JOB_ID)
    assert isinstance(outcome, Malformed)
    assert "encoding" in outcome.error
    assert outcome.status_code == 200


async def test_fetch_job_reports_a_body_cut_short(
    make_client: Callable[..., UpstreamClient],
) -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        writer.write(b"Content-Length: 500\r\n\r\n" + b'{"job": {"id": "')
        await writer.drain()
        writer.close()

    assert isinstance(await _fetch_from_raw_server(make_client, cut), ConnectionFailed)


async def test_fetch_job_never_returns_a_cookie(client: UpstreamClient, standin: StandIn) -> None:
    """One pool serves every account: a cookie one answer set must not ride on later polls."""
    standin.queue(
        Reply(body=job_body(), headers={"Set-Cookie": "session=account-a; Path=/"}),
        Reply(body=job_body()),
    )
    await client.fetch_job(JOB_ID)
    await client.fetch_job(JOB_ID)
    assert "cookie" not in standin.seen[1].headers


async def test_list_jobs_sends_the_query_quoted(client: UpstreamClient, standin: StandIn) -> None:
    standin.queue(Reply(body={"jobs": [], "next_cursor": None}))
    await client.list_jobs(status="queued", cursor="2026-11-28T12:00:00+00:00&x=1")
    path = standin.seen[0].raw_path
    assert path.startswith("/api/v1/product-photo-jobs")
    query = parse_qs(standin.seen[0].query)
    assert query == {
        "status": ["queued"],
        "limit": ["100"],
        "cursor": ["2026-11-28T12:00:00+00:00&x=1"],
    }


async def test_polls_over_the_aiohttp_transport_go_through_its_session() -> None:
    """The aiohttp transport (lent by the pool or not) is sent to without httpx's objects; any
    other transport is sent the httpx way."""
    shared = make_transport("aiohttp")
    assert shared is not None

    def wire_of(transport: Any) -> object:
        client = UpstreamClient(
            base_url="http://127.0.0.1:1", api_key=KEY, timeout_s=1, transport=transport
        )
        return client._wire

    assert isinstance(wire_of(Borrowed(shared)), SessionWire)
    assert isinstance(wire_of(shared), SessionWire)
    assert isinstance(wire_of(make_transport("httpx")), HttpxWire)
    assert isinstance(wire_of(httpx.MockTransport(lambda request: httpx.Response(200))), HttpxWire)
    await shared.aclose()
