"""Pinned webhooks over the real aiohttp session, against a real TLS server on 127.0.0.1.

test_webhook_channel.py checks pinning through httpx.MockTransport, which never opens a socket.
Here the channel resolves `hooks.example.test` to 127.0.0.1 (the guard is told to let loopback
through), connects to that address with the aiohttp session deliveries use, and must still verify
the certificate against the name: the URL carries the address, the `Host` header and TLS the name.
"""

import asyncio
import contextlib
import ipaddress
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest
import standardwebhooks
import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bridge.delivery import signing, urlguard
from bridge.delivery.channels import Message, SendError
from bridge.delivery.channels.webhook import WebhookChannel
from bridge.delivery.http import DeliveryTransport
from bridge.delivery.post import SessionPoster
from tests.certs import write_certificate
from tests.ports import free_port

NAME = "hooks.example.test"
LOOPBACK = ipaddress.ip_address("127.0.0.1")


@dataclass
class Receiver:
    """Keeps what each request carried and whether its signature verified."""

    secret: str = field(default_factory=signing.new_secret)
    requests: list[dict] = field(default_factory=list)

    async def hook(self, request):
        body = await request.body()
        headers = dict(request.headers)
        try:
            standardwebhooks.Webhook(self.secret).verify(body, headers)
            verdict = "ok"
        except Exception as exc:
            verdict = f"{type(exc).__name__}: {exc}"
        self.requests.append(
            {
                "headers": headers,
                "target": f"{request.url.path}?{request.url.query}",
                "client": (request.client.host, request.client.port),  # which connection
                "verdict": verdict,
            }
        )
        return PlainTextResponse("ok")


@contextlib.asynccontextmanager
async def serving_tls(receiver, cert_path, key_path):
    """uvicorn over TLS on 127.0.0.1 (`serving` takes no TLS options); yields the port."""
    app = Starlette(routes=[Route("/in", receiver.hook, methods=["POST"])])
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        ssl_certfile=str(cert_path),
        ssl_keyfile=str(key_path),
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("server stopped before it started")
                await asyncio.sleep(0.01)
        yield port
    finally:
        server.should_exit = True
        await task


@pytest.fixture
def allow_loopback(monkeypatch):
    """Let 127.0.0.1 past the guard, and only it: every other address is judged as ever."""
    refusal = urlguard._refusal
    monkeypatch.setattr(
        urlguard, "_refusal", lambda address: None if address == LOOPBACK else refusal(address)
    )


@contextlib.asynccontextmanager
async def pinned_channel(receiver, port, trusted_cert, answer, *, names=(NAME,)):
    """A channel whose URL names NAME (one per name in `names`, sharing one pool), resolved to
    `answer`, over the deliveries' aiohttp pool; yields the channel (or the list of them)."""

    async def resolve(host, _port):
        assert host in names
        return answer

    context = ssl.create_default_context(cafile=str(trusted_cert))
    async with httpx.AsyncClient(
        transport=DeliveryTransport(verify=context), trust_env=False
    ) as client:
        channels = [
            WebhookChannel(
                url=f"https://{name}:{port}/in?key=1",
                secrets=[receiver.secret],
                client=client,
                allowed_hosts=[],
                timeout_s=5,
                user_agent="photo-bridge/test",
                resolve=resolve,
            )
            for name in names
        ]
        # The point of this file: the session path, not httpx's (which the other file covers).
        assert all(isinstance(channel._poster, SessionPoster) for channel in channels)
        yield channels[0] if len(channels) == 1 else channels


def make_message():
    return Message(
        delivery_id="dlv_1",
        event_id="evt_1",
        event_type="item.completed",
        timestamp=datetime(2026, 11, 28, 12, tzinfo=UTC),
        payload={"type": "item.completed", "data": {"event_id": "evt_1"}},
        job=None,
        attempt=1,
    )


async def test_pinned_send_verifies_the_name_while_connecting_to_the_address(
    tmp_path, allow_loopback
):
    receiver = Receiver()
    cert, key = write_certificate(tmp_path, NAME)
    async with serving_tls(receiver, cert, key) as port:
        async with pinned_channel(receiver, port, cert, ["127.0.0.1"]) as channel:
            result = await channel.send(make_message())
            again = await channel.send(make_message())
    assert (result.status_code, result.response_excerpt) == (200, "ok")
    assert again.status_code == 200
    first, second = receiver.requests
    assert first["headers"]["host"] == f"{NAME}:{port}"
    assert first["target"] == "/in?key=1"
    assert first["verdict"] == second["verdict"] == "ok"
    # aiohttp's pool knows a connection by the name TLS verified too: the second webhook to the
    # same name and address rides the first one's connection (one TLS handshake, not two).
    assert "connection" not in first["headers"]
    assert first["client"] == second["client"]


async def test_a_pinned_connection_never_serves_another_name(tmp_path, allow_loopback):
    """Two names on one address (one certificate names both): each gets its own connection, so
    a connection TLS verified for one name is never reused for the other."""
    receiver = Receiver()
    other = "second.example.test"
    cert, key = write_certificate(tmp_path, NAME, other)
    async with serving_tls(receiver, cert, key) as port:
        names = (NAME, other)
        async with pinned_channel(receiver, port, cert, ["127.0.0.1"], names=names) as channels:
            for channel in (*channels, *channels):
                assert (await channel.send(make_message())).status_code == 200
    hosts = [(r["headers"]["host"].split(":")[0], r["client"]) for r in receiver.requests]
    assert [h for h, _ in hosts] == [NAME, other, NAME, other]
    assert hosts[0][1] == hosts[2][1] and hosts[1][1] == hosts[3][1]  # each name kept its own
    assert hosts[0][1] != hosts[1][1]  # and never the other's


async def test_pinned_send_fails_when_the_certificate_names_another_host(tmp_path, allow_loopback):
    """The certificate is trusted but names another host: had TLS checked the IP (or nothing),
    the mismatch would go unseen; it must fail because the name we meant is not on it."""
    receiver = Receiver()
    cert, key = write_certificate(tmp_path, "other.example.test")
    async with serving_tls(receiver, cert, key) as port:
        async with pinned_channel(receiver, port, cert, ["127.0.0.1"]) as channel:
            with pytest.raises(SendError) as raised:
                await channel.send(make_message())
    assert str(raised.value).startswith("connection error:")
    assert "certificate verify failed" in str(raised.value)  # not some other connection trouble
    assert receiver.requests == []


@pytest.mark.parametrize(
    ("answer", "reason"), [("10.0.0.8", "private address"), ("127.0.0.1", "loopback address")]
)
async def test_pinned_send_refuses_a_name_resolving_inside(tmp_path, answer, reason):
    """Without the test's exemption the guard refuses before connecting, even to a live server."""
    receiver = Receiver()
    cert, key = write_certificate(tmp_path, NAME)
    async with serving_tls(receiver, cert, key) as port:
        async with pinned_channel(receiver, port, cert, [answer]) as channel:
            with pytest.raises(SendError) as raised:
                await channel.send(make_message())
    assert str(raised.value).startswith("unsafe webhook URL:")
    assert reason in str(raised.value)
    assert receiver.requests == []
