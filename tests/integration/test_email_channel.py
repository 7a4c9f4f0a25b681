import asyncio
import email
import email.policy
import gc
import ssl
import time
import warnings
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from bridge.delivery.channels import SendError
from bridge.delivery.channels.email import EmailChannel
from bridge.rendering import Renderer
from tests.certs import write_certificate
from tests.plugins.job_story import JOB_ID, MemoryState, job_story, retried
from tests.ports import free_port

SENDER = "bridge@example.com"
TO = ["ops@example.com", "catalog@example.com"]
NOW = datetime(2026, 11, 28, 13, 0, tzinfo=UTC)
ROOT_ID = f"<job.{JOB_ID}.ops-email@photo-bridge.test>"


class Inbox:
    """An aiosmtpd handler that keeps every message it accepts, parsed, with its envelope."""

    def __init__(self):
        self.received = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody@"):
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.received.append((parsed, envelope, session))
        return "250 Message accepted for delivery"


class FreePortController(Controller):
    """Controller on port 0: learns the port the OS picked before it checks the server is up."""

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@pytest.fixture
def smtp_server():
    servers = []

    def start(**kwargs):
        inbox = Inbox()
        controller = FreePortController(inbox, hostname="127.0.0.1", port=0, **kwargs)
        controller.start()
        servers.append(controller)
        return inbox, controller.port

    yield start
    for controller in servers:
        controller.stop()
    # aiosmtpd's Controller stops its loop without closing connections still open (a plain client
    # that gave up on a TLS-only port leaves one): collect them here, where their ResourceWarning
    # is the stand-in's, not in whichever test the garbage collector happens to run during.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@pytest.fixture(scope="module")
def renderer():
    return Renderer()


def make_channel(renderer, port, **overrides):
    settings = {
        "name": "ops-email",
        "host": "127.0.0.1",
        "port": port,
        "sender": SENDER,
        "to": TO,
        "renderer": renderer,
        "mode": "summary",
        "starttls": False,
        "timeout_s": 5.0,
        "message_id_domain": "photo-bridge.test",
        "state": MemoryState(),
        "public_url": "https://bridge.example.com",
        "now": lambda: NOW,
    } | overrides
    return EmailChannel(**settings)


def parts(message):
    return {
        part.get_content_type(): part.get_content()
        for part in message.walk()
        if not part.is_multipart()
    }


async def test_email_channel_summary_sends_one_tidy_email_when_the_job_ends(smtp_server, renderer):
    inbox, port = smtp_server()
    channel = make_channel(renderer, port)
    story = job_story(items=4, failing=frozenset({2}), error_message="Edge <unclear> & blurry")

    for message in story:
        await channel.send(message)

    [(received, envelope, _)] = inbox.received
    assert envelope.mail_from == SENDER and envelope.rcpt_tos == TO
    assert received.get_content_type() == "multipart/alternative"
    assert received["Subject"] == f"[photo-bridge] Product photo job {JOB_ID[:8]} (account main)"
    assert received["From"] == SENDER and received["To"] == ", ".join(TO)
    assert received["Message-ID"] == ROOT_ID
    assert received["In-Reply-To"] is None
    assert received["Auto-Submitted"] == "auto-generated"
    assert received["Date"] == "Sat, 28 Nov 2026 13:00:00 +0000"
    text, html = parts(received)["text/plain"], parts(received)["text/html"]
    assert "Partially completed" in text and "3 of 4 images done, 1 failed" in text
    assert "segmentation_failed" in text and "Edge <unclear> & blurry (image 2)" in text
    for n in (1, 3, 4):
        assert f"https://cdn.example.com/r/sku-{n:02d}.png" in text
        assert f'<img src="https://cdn.example.com/t/sku-{n:02d}.jpg"' in html
        assert f'href="https://cdn.example.com/r/sku-{n:02d}.png"' in html
    assert "Edge &lt;unclear&gt; &amp; blurry (image 2)" in html
    assert "<style" not in html and 'style="' in html


async def test_email_channel_summary_skips_events_before_the_end(smtp_server, renderer):
    inbox, port = smtp_server()
    channel = make_channel(renderer, port)

    result = await channel.send(job_story(items=2)[2])

    assert inbox.received == []
    assert "skipped" in result.response_excerpt


async def test_email_channel_events_mode_threads_every_email_of_a_job(smtp_server, renderer):
    inbox, port = smtp_server()
    channel = make_channel(renderer, port, mode="events")
    story = job_story(items=2, failing=frozenset({2}))

    for message in story[:4]:
        await channel.send(message)
    await channel.send(retried(story[3]))

    emails = [received for received, _, _ in inbox.received]
    assert len(emails) == 5
    assert emails[0]["Message-ID"] == ROOT_ID and emails[0]["In-Reply-To"] is None
    later_ids = [e["Message-ID"] for e in emails[1:]]
    assert len(set(later_ids[:3])) == 3 and ROOT_ID not in later_ids
    assert later_ids[3] == later_ids[2]  # a retried event keeps its Message-ID: clients dedupe
    assert all(e["In-Reply-To"] == ROOT_ID and e["References"] == ROOT_ID for e in emails[1:])
    assert len({e["Subject"] for e in emails}) == 1
    assert "Image sku-01 is ready." in parts(emails[3])["text/plain"]


async def test_email_channel_root_survives_a_restart(smtp_server, renderer):
    inbox, port = smtp_server()
    state = MemoryState()
    story = job_story(items=2)
    await make_channel(renderer, port, mode="events", state=state).send(story[0])

    await make_channel(renderer, port, mode="events", state=state).send(story[1])

    first, second = (received for received, _, _ in inbox.received)
    assert first["Message-ID"] == ROOT_ID
    assert second["In-Reply-To"] == ROOT_ID and second["Message-ID"] != ROOT_ID


async def test_email_channel_watch_failed_spells_out_the_reason(smtp_server, renderer):
    inbox, port = smtp_server()
    channel = make_channel(renderer, port)
    message = job_story(items=1)[0]
    data = dict(
        message.payload["data"], job=None, error={"code": "job_not_found", "message": "Gone."}
    )
    payload = {"type": "watch.failed", "timestamp": "2026-11-28T12:30:00Z", "data": data}

    await channel.send(replace(message, event_type="watch.failed", payload=payload, job=None))

    [(received, _, _)] = inbox.received
    text = parts(received)["text/plain"]
    assert "photo-bridge stopped following this job" in text
    assert "job_not_found: Gone." in text


def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"bridge",
        b"s3cret-pass",
    )
    return AuthResult(success=ok, handled=False)


@pytest.mark.parametrize(("password", "delivered"), [("s3cret-pass", True), ("wrong-pass", False)])
async def test_email_channel_authenticates(smtp_server, renderer, password, delivered):
    inbox, port = smtp_server(authenticator=_authenticator, auth_require_tls=False)
    channel = make_channel(renderer, port, username="bridge", password=password)
    final = job_story(items=1)[-1]

    if delivered:
        await channel.send(final)
    else:
        with pytest.raises(SendError) as failure:
            await channel.send(final)
        assert failure.value.permanent
        assert password not in str(failure.value)

    assert len(inbox.received) == int(delivered)


async def test_email_channel_refused_recipients_are_permanent(smtp_server, renderer):
    inbox, port = smtp_server()
    channel = make_channel(renderer, port, to=["nobody@example.com"])

    with pytest.raises(SendError) as failure:
        await channel.send(job_story(items=1)[-1])

    assert failure.value.permanent
    assert "550" in str(failure.value)
    assert inbox.received == []


async def test_email_channel_unreachable_server_is_retryable(renderer):
    port = free_port()
    channel = make_channel(renderer, port, password="never-shown-pw", username="bridge")

    with pytest.raises(SendError) as failure:
        await channel.send(job_story(items=1)[-1])

    assert not failure.value.permanent
    assert "never-shown-pw" not in str(failure.value)


# ----- TLS ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1: (cert path, key path)."""
    return write_certificate(tmp_path_factory.mktemp("tls"), "127.0.0.1")


def _server_context(certificate):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def _client_context(certificate):
    return ssl.create_default_context(cafile=str(certificate[0]))


async def test_email_channel_upgrades_with_starttls(smtp_server, renderer, certificate):
    inbox, port = smtp_server(
        tls_context=_server_context(certificate),
        require_starttls=True,
        authenticator=_authenticator,
    )
    channel = make_channel(
        renderer,
        port,
        starttls=True,
        tls_context=_client_context(certificate),
        username="bridge",
        password="s3cret-pass",
    )

    await channel.send(job_story(items=1)[-1])

    [(_, _, session)] = inbox.received
    assert session.ssl is not None
    assert session.authenticated


async def test_email_channel_speaks_implicit_tls(smtp_server, renderer, certificate):
    inbox, port = smtp_server(ssl_context=_server_context(certificate))
    channel = make_channel(
        renderer, port, use_tls=True, starttls=True, tls_context=_client_context(certificate)
    )

    plain = make_channel(renderer, port, starttls=False, timeout_s=0.5)

    await channel.send(job_story(items=1)[-1])
    with pytest.raises(SendError):
        await plain.send(job_story(items=1)[-1])

    assert len(inbox.received) == 1  # only the TLS client could talk to a TLS-only port


async def test_email_channel_refuses_an_untrusted_certificate(smtp_server, renderer, certificate):
    inbox, port = smtp_server(tls_context=_server_context(certificate), require_starttls=True)
    channel = make_channel(renderer, port, starttls=True)  # system trust store: self-signed fails

    with pytest.raises(SendError):
        await channel.send(job_story(items=1)[-1])

    assert inbox.received == []


async def test_email_channel_send_finishes_within_its_timeout(renderer):
    """A server that accepts the connection and says nothing must not hang the delivery."""
    writers = []

    async def say_nothing(reader, writer):
        writers.append(writer)

    listener = await asyncio.start_server(say_nothing, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    channel = make_channel(renderer, port, timeout_s=0.3)
    started = time.monotonic()

    async with listener:
        with pytest.raises(SendError) as failure:
            await channel.send(job_story(items=1)[-1])
        for writer in writers:
            writer.close()

    assert "timeout" in str(failure.value).lower()
    assert time.monotonic() - started < 3


async def test_email_channel_template_failure_is_permanent(smtp_server, tmp_path):
    inbox, port = smtp_server()
    override = tmp_path / "email" / "summary.txt.j2"
    override.parent.mkdir()
    override.write_text("{{ data.metadata.ticket }}")
    channel = make_channel(Renderer(override_dir=tmp_path), port)

    with pytest.raises(SendError) as failure:
        await channel.send(job_story(items=1)[-1])

    assert "template problem" in str(failure.value)
    assert failure.value.permanent  # the same event renders the same way on every retry
    assert inbox.received == []
