import asyncio
import contextlib
import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
import standardwebhooks
import svix.webhooks
from httpx_aiohttp import AiohttpTransport
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from bridge.delivery import signing
from bridge.delivery.channels import Channel, Message, SendError
from bridge.delivery.channels.webhook import WebhookChannel
from bridge.delivery.http import DeliveryTransport
from bridge.delivery.post import HttpxPoster, SessionPoster, poster_for
from bridge.devtools.localserver import serving
from tests.ports import free_port

USER_AGENT = "photo-bridge/test"
PAYLOAD = {
    "type": "item.completed",
    "timestamp": "2026-11-28T12:00:00Z",
    "data": {"event_id": "evt_1", "sequence": 7, "metadata": {"note": "café ✓"}},
}


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]
    verdicts: dict[str, str]


@dataclass
class Receiver:
    """A webhook receiver that verifies every request as a Standard Webhooks user would."""

    secret: str
    url: str = ""
    requests: list[Received] = field(default_factory=list)
    landings: int = 0
    answer: Response | None = None
    stall: bool = False
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def hook(self, request):
        body = await request.body()
        headers = dict(request.headers)
        verdicts = {
            "standardwebhooks": _verdict(
                standardwebhooks.Webhook(self.secret).verify, body, headers
            ),
            "svix": _verdict(svix.webhooks.Webhook(self.secret).verify, body, headers),
            "user-agent": "ok" if headers.get("user-agent") == USER_AGENT else "wrong",
        }
        self.requests.append(Received(body, headers, verdicts))
        if set(verdicts.values()) != {"ok"}:
            return PlainTextResponse(json.dumps(verdicts), status_code=401)
        if self.stall:
            await asyncio.wait_for(self.release.wait(), timeout=10)
        return self.answer or PlainTextResponse("ok")

    async def landing(self, request):
        self.landings += 1
        return PlainTextResponse("landed")


def _verdict(verify, body, headers):
    try:
        verify(body, headers)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "ok"


@pytest.fixture
async def receiver():
    rec = Receiver(secret=signing.new_secret())
    app = Starlette(
        routes=[
            Route("/hook", rec.hook, methods=["POST"]),
            Route("/landing", rec.landing, methods=["GET", "POST"]),
        ]
    )
    async with serving(app) as server:
        rec.url = server.url
        try:
            yield rec
        finally:
            rec.release.set()


@pytest.fixture(params=["httpcore", "aiohttp"])
async def client(request):
    """httpx over its own pool, and over the aiohttp pool that serve sends with."""
    transport = DeliveryTransport() if request.param == "aiohttp" else None
    async with httpx.AsyncClient(
        transport=transport, trust_env=False, follow_redirects=True
    ) as http:
        yield http


def fixed_clock(*moments):
    """A clock that returns the given moments in turn, then keeps the last."""
    remaining = list(moments)

    def now():
        return remaining.pop(0) if len(remaining) > 1 else remaining[0]

    return now


def second_now():
    return datetime.now(UTC).replace(microsecond=0)


def make_channel(receiver, client, **overrides):
    options = {
        "url": receiver.url + "/hook",
        "secrets": [receiver.secret],
        "client": client,
        "allowed_hosts": ["127.0.0.1"],
        "timeout_s": 5.0,
        "user_agent": USER_AGENT,
    }
    options.update(overrides)
    return WebhookChannel(**options)


def make_message(*, event_id="evt_1", attempt=1):
    return Message(
        delivery_id="dlv_1",
        event_id=event_id,
        event_type="item.completed",
        timestamp=datetime(2026, 11, 28, 12, tzinfo=UTC),
        payload=PAYLOAD,
        job=None,
        attempt=attempt,
    )


async def test_webhook_send_posts_signed_compact_json(receiver, client):
    when = second_now()
    channel: Channel = make_channel(receiver, client, now=fixed_clock(when))
    result = await channel.send(make_message())
    assert (result.status_code, result.response_excerpt) == (200, "ok")
    [request] = receiver.requests
    assert request.verdicts == {"standardwebhooks": "ok", "svix": "ok", "user-agent": "ok"}
    assert request.body == json.dumps(PAYLOAD, separators=(",", ":")).encode()
    assert json.loads(request.body) == PAYLOAD
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == "evt_1"
    assert request.headers["webhook-timestamp"] == str(int(when.timestamp()))


async def test_webhook_send_rotation_verifies_with_either_secret(receiver, client):
    channel = make_channel(receiver, client, secrets=[signing.new_secret(), receiver.secret])
    result = await channel.send(make_message())
    assert result.status_code == 200
    [request] = receiver.requests
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert request.verdicts["standardwebhooks"] == request.verdicts["svix"] == "ok"


async def test_webhook_send_unknown_secret_is_refused_by_receiver(receiver, client):
    channel = make_channel(receiver, client, secrets=[signing.new_secret()])
    with pytest.raises(SendError) as raised:
        await channel.send(make_message())
    assert raised.value.status_code == 401
    assert "No matching signature" in receiver.requests[0].verdicts["standardwebhooks"]


async def test_webhook_send_resend_keeps_id_and_takes_fresh_timestamp(receiver, client):
    first = second_now()
    channel = make_channel(receiver, client, now=fixed_clock(first, first + timedelta(seconds=60)))
    await channel.send(make_message(attempt=1))
    await channel.send(make_message(attempt=2))
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    stamps = [int(r.headers["webhook-timestamp"]) for r in receiver.requests]
    assert ids == ["evt_1", "evt_1"]
    assert stamps == [int(first.timestamp()), int(first.timestamp()) + 60]
    assert all(r.verdicts["standardwebhooks"] == "ok" for r in receiver.requests)


async def test_webhook_send_caps_response_excerpt(receiver, client):
    receiver.answer = PlainTextResponse("é" * 5000)
    result = await make_channel(receiver, client).send(make_message())
    assert result.response_excerpt == "é" * 500


@pytest.mark.parametrize(
    ("status", "permanent"), [(500, False), (503, False), (400, False), (404, False), (410, True)]
)
async def test_webhook_send_maps_failure_status(receiver, client, status, permanent):
    receiver.answer = PlainTextResponse("nope " * 200, status_code=status)
    channel = make_channel(receiver, client)
    with pytest.raises(SendError) as raised:
        await channel.send(make_message())
    error = raised.value
    assert (error.status_code, error.permanent, error.retry_after_s) == (status, permanent, None)
    assert error.response_excerpt == ("nope " * 200)[:500]
    assert f"HTTP {status}" in str(error)
    assert receiver.secret.removeprefix("whsec_") not in str(error)


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        ("120", 120.0),
        ("DATE+90", 90.0),
        ("DATE-30", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
async def test_webhook_send_429_reports_retry_after(receiver, client, retry_after, expected):
    when = second_now()
    if retry_after is not None and retry_after.startswith("DATE"):
        retry_after = format_datetime(when + timedelta(seconds=int(retry_after[4:])), usegmt=True)
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    receiver.answer = PlainTextResponse("slow down", status_code=429, headers=headers)
    channel = make_channel(receiver, client, now=fixed_clock(when))
    with pytest.raises(SendError) as raised:
        await channel.send(make_message())
    assert (raised.value.status_code, raised.value.permanent) == (429, False)
    assert raised.value.retry_after_s == expected


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_webhook_send_does_not_follow_redirects(receiver, client, status):
    receiver.answer = RedirectResponse(receiver.url + "/landing", status_code=status)
    with pytest.raises(SendError) as raised:
        await make_channel(receiver, client).send(make_message())
    assert raised.value.status_code == status
    assert not raised.value.permanent
    assert "redirects are not followed" in str(raised.value)
    assert receiver.landings == 0


async def test_webhook_send_times_out(receiver, client):
    receiver.stall = True
    channel = make_channel(receiver, client, timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(SendError) as raised:
        await channel.send(make_message())
    assert time.monotonic() - started < 2
    assert str(raised.value) == "timeout after 0.3s"
    assert (raised.value.status_code, raised.value.permanent) == (None, False)
    assert len(receiver.requests) == 1


async def test_webhook_send_reports_connection_error(client):
    port = free_port()  # nobody listens there
    channel = WebhookChannel(
        url=f"http://127.0.0.1:{port}/hook",
        secrets=[signing.new_secret()],
        client=client,
        allowed_hosts=["127.0.0.1"],
        timeout_s=5,
        user_agent=USER_AGENT,
    )
    with pytest.raises(SendError) as raised:
        await channel.send(make_message())
    assert str(raised.value).startswith("connection error: ConnectError")
    assert (raised.value.status_code, raised.value.permanent) == (None, False)


@pytest.mark.parametrize(
    ("scheme", "reason"), [("http", "must be https"), ("https", "loopback address")]
)
async def test_webhook_send_refuses_loopback_unless_allowed(receiver, client, scheme, reason):
    url = receiver.url.replace("http", scheme, 1) + "/hook"
    channel = make_channel(receiver, client, url=url, allowed_hosts=[])
    with pytest.raises(SendError) as raised:
        await channel.send(make_message())
    assert str(raised.value).startswith("unsafe webhook URL: ")
    assert reason in str(raised.value)
    assert (raised.value.status_code, raised.value.permanent) == (None, False)
    assert receiver.requests == []


async def test_webhook_send_rechecks_dns_at_send_time(client):
    answers = {"hooks.example.com": ["93.184.216.34"]}

    async def resolve(host, port):
        return answers[host]

    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(204)

    mock = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    channel = WebhookChannel(
        url="https://hooks.example.com/in/SECRET-TOKEN",
        secrets=[signing.new_secret()],
        client=mock,
        allowed_hosts=[],
        timeout_s=5,
        user_agent=USER_AGENT,
        resolve=resolve,
    )
    assert (await channel.send(make_message())).status_code == 204
    answers["hooks.example.com"] = ["93.184.216.34", "10.0.0.8"]  # the name now points inside
    with pytest.raises(SendError) as raised:
        await channel.send(make_message())
    assert "private address" in str(raised.value)
    assert "SECRET-TOKEN" not in str(raised.value)
    assert len(seen) == 1
    await mock.aclose()


async def test_webhook_send_connects_to_checked_addresses_in_turn():
    secret = signing.new_secret()
    seen = []

    async def resolve(host, port):
        return ["2606:2800:220:1::1", "93.184.216.34"]

    def handler(request):
        seen.append(request)
        if request.url.host == "2606:2800:220:1::1":
            raise httpx.ConnectError("unreachable", request=request)
        return httpx.Response(200, text="ok")

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as mock:
        channel = WebhookChannel(
            url="https://hooks.example.com:8443/in?key=1",
            secrets=[secret],
            client=mock,
            allowed_hosts=[],
            timeout_s=5,
            user_agent=USER_AGENT,
            resolve=resolve,
        )
        result = await channel.send(make_message())
    assert result.status_code == 200
    assert [str(r.url) for r in seen] == [
        "https://[2606:2800:220:1::1]:8443/in?key=1",
        "https://93.184.216.34:8443/in?key=1",
    ]
    last = seen[-1]
    assert last.headers["host"] == "hooks.example.com:8443"
    assert last.headers["connection"] == "close"
    assert last.extensions["sni_hostname"] == "hooks.example.com"
    assert last.extensions["timeout"] == {"connect": 5, "read": 5, "write": 5, "pool": 5}
    standardwebhooks.Webhook(secret).verify(last.content, dict(last.headers))


@pytest.mark.parametrize("secrets", [[], ["not-a-secret"], ["whsec_***"]])
async def test_webhook_channel_refuses_bad_secrets(client, secrets):
    with pytest.raises(ValueError):
        WebhookChannel(
            url="https://hooks.example.com/",
            secrets=secrets,
            client=client,
            allowed_hosts=[],
            timeout_s=5,
            user_agent=USER_AGENT,
        )


async def test_webhook_send_reports_a_receiver_that_hangs_up(client):
    async def hang_up(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    channel = WebhookChannel(
        url=f"http://127.0.0.1:{port}/hook",
        secrets=[signing.new_secret()],
        client=client,
        allowed_hosts=["127.0.0.1"],
        timeout_s=5,
        user_agent=USER_AGENT,
    )
    try:
        with pytest.raises(SendError) as raised:
            await channel.send(make_message())
    finally:
        server.close()
        await server.wait_closed()
    assert str(raised.value).startswith("connection error: RemoteProtocolError")
    assert (raised.value.status_code, raised.value.permanent) == (None, False)


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("text/plain; charset=iso-8859-1", b"caf\xe9", "café"),
        ("text/plain; charset=no-such-charset", "café".encode(), "café"),  # UTF-8 then
        # A codec, but not a text encoding: decoding with it would raise, and a receiver's
        # header must not turn a delivered webhook into a failed one.
        ("text/plain; charset=base64", "café".encode(), "café"),
        ("application/json", '{"note":"café"}'.encode(), '{"note":"café"}'),
    ],
    ids=["iso-8859-1", "unknown-charset", "not-a-text-encoding", "no-charset"],
)
async def test_webhook_send_decodes_the_excerpt_in_the_declared_charset(
    receiver, client, content_type, body, expected
):
    receiver.answer = Response(body, headers={"content-type": content_type})
    result = await make_channel(receiver, client).send(make_message())
    assert (result.status_code, result.response_excerpt) == (200, expected)


@contextlib.asynccontextmanager
async def raw_receiver(answer: bytes):
    """A bare HTTP/1.1 server that reads one request, writes `answer`, then stalls until the
    block ends; yields its base URL."""
    done = asyncio.Event()

    async def handle(reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            await reader.readexactly(int(length.group(1)) if length else 0)
            writer.write(answer)
            await writer.drain()
            await done.wait()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        done.set()
        server.close()
        await server.wait_closed()


async def test_webhook_send_keeps_the_status_of_a_receiver_that_stalls_in_its_body(client):
    headers_only = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n"
    async with raw_receiver(headers_only) as url:
        channel = WebhookChannel(
            url=url + "/hook",
            secrets=[signing.new_secret()],
            client=client,
            allowed_hosts=["127.0.0.1"],
            timeout_s=1.0,
            user_agent=USER_AGENT,
        )
        started = time.monotonic()
        result = await channel.send(make_message())
        elapsed = time.monotonic() - started
    assert (result.status_code, result.response_excerpt) == (200, None)
    assert 0.5 < elapsed < 5  # the body was waited for until the deadline, no longer


async def test_webhook_send_keeps_a_secret_in_the_url_out_of_a_protocol_error(client):
    async with raw_receiver(b"HTTP/1.1 abc nonsense\r\n\r\n") as url:
        channel = WebhookChannel(
            url=url + "/hook?token=SECRET-TOKEN",
            secrets=[signing.new_secret()],
            client=client,
            allowed_hosts=["127.0.0.1"],
            timeout_s=5.0,
            user_agent=USER_AGENT,
        )
        with pytest.raises(SendError) as raised:
            await channel.send(make_message())
    assert str(raised.value).startswith("connection error: RemoteProtocolError")
    assert "SECRET-TOKEN" not in str(raised.value)


async def test_webhook_send_cookies_set_by_a_receiver(request, receiver, client):
    receiver.answer = PlainTextResponse("ok", headers={"set-cookie": "s=1; Path=/"})
    channel = make_channel(receiver, client)
    await channel.send(make_message())
    await channel.send(make_message())
    first, second = receiver.requests
    assert "cookie" not in first.headers
    if request.node.callspec.params["client"] == "aiohttp":
        # SessionPoster posts through the aiohttp session, whose jar is a DummyCookieJar, and
        # never through httpx's client: no answer's cookie rides on a later webhook.
        assert "cookie" not in second.headers
    else:
        # HttpxPoster builds the request with httpx's client, whose jar keeps the receiver's
        # cookie (for its own host only) and sends it back, as httpx always has.
        assert second.headers["cookie"] == "s=1"


@pytest.mark.parametrize(
    ("make_client", "poster"),
    [
        (lambda: httpx.AsyncClient(transport=DeliveryTransport()), SessionPoster),
        (lambda: httpx.AsyncClient(), HttpxPoster),
        (
            lambda: httpx.AsyncClient(
                transport=DeliveryTransport(), mounts={"all://": httpx.AsyncHTTPTransport()}
            ),
            HttpxPoster,
        ),
        # Any other aiohttp transport may keep cookies or use a proxy: httpx sends through it.
        (lambda: httpx.AsyncClient(transport=AiohttpTransport()), HttpxPoster),
    ],
    ids=["delivery-transport", "httpcore", "delivery-transport-with-mount", "aiohttp-transport"],
)
async def test_poster_for_takes_the_session_only_when_no_mount_claims_a_url(
    receiver, make_client, poster
):
    async with make_client() as http:
        assert type(poster_for(http, timeout_s=5)) is poster
        channel = make_channel(receiver, http)
        assert type(channel._poster) is poster
        result = await channel.send(make_message())
    assert (result.status_code, result.response_excerpt) == (200, "ok")
