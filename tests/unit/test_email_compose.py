from datetime import UTC, datetime

import pytest

from bridge.delivery.channels.email import (
    WIRE_POLICY,
    compose,
    is_summary_event,
    reply_message_id,
    root_message_id,
)
from bridge.events.vocabulary import EVENT_TYPES

JOB = "5b2d8c4e-1f3a-4e6b-9c7d-0a1b2c3d4e5f"


@pytest.mark.parametrize(
    ("event_type", "expected"),
    [
        ("job.completed", True),
        ("job.partially_completed", True),
        ("job.failed", True),
        ("job.cancelled", True),
        ("watch.failed", True),
        ("watch.expired", True),
        ("job.queued", False),
        ("job.processing", False),
        ("item.failed", False),
        ("item.completed", False),
        ("item.updated", False),
        ("job.paused", False),
    ],
)
def test_is_summary_event(event_type, expected):
    assert is_summary_event(event_type) is expected


def test_is_summary_event_takes_one_event_per_job_life():
    assert [t for t in EVENT_TYPES if is_summary_event(t) and t.startswith("job.")] == [
        "job.cancelled",
        "job.completed",
        "job.failed",
        "job.partially_completed",
    ]


@pytest.mark.parametrize(
    ("channel", "expected"),
    [
        ("ops-email", f"<job.{JOB}.ops-email@mail.test>"),
        ("ops email/<x>", f"<job.{JOB}.ops-email-x@mail.test>"),
        ("@@", f"<job.{JOB}.x@mail.test>"),
    ],
)
def test_root_message_id_is_stable_and_safe(channel, expected):
    assert root_message_id(channel=channel, job_id=JOB, domain="mail.test") == expected


def test_reply_message_id_is_unique_per_event_and_stable_per_retry():
    ids = {
        reply_message_id(channel="ops", job_id=JOB, event_id=e, domain="mail.test")
        for e in ("evt_1", "evt_2", "evt_1")
    }

    assert len(ids) == 2
    assert root_message_id(channel="ops", job_id=JOB, domain="mail.test") not in ids


def make(root_id):
    return compose(
        subject="[photo-bridge] Product photo job 5b2d8c4e\n (account main)",
        text="Hello — plain",
        html="<p>Hello — <b>html</b></p>",
        sender="bridge@example.com",
        to=["a@example.com", "b@example.com"],
        message_id="<m2@mail.test>",
        root_id=root_id,
        date=datetime(2026, 11, 28, 12, 0, tzinfo=UTC),
    )


def test_compose_builds_multipart_alternative_with_threading_headers():
    mail = make("<root@mail.test>")

    assert mail.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]
    assert mail["Subject"] == "[photo-bridge] Product photo job 5b2d8c4e (account main)"
    assert mail["To"] == "a@example.com, b@example.com"
    assert mail["In-Reply-To"] == mail["References"] == "<root@mail.test>"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["Date"] == "Sat, 28 Nov 2026 12:00:00 +0000"


def test_compose_root_email_has_no_reply_headers():
    mail = make(None)

    assert mail["In-Reply-To"] is None and mail["References"] is None


def test_compose_wire_form_is_7bit_with_unfolded_ids():
    long_id = f"<job.{JOB}.a-rather-long-channel-name.evt_0194c3a1b2c3d4e5f6@photo-bridge.local>"
    mail = make(long_id)

    wire = mail.as_bytes(policy=WIRE_POLICY)

    assert wire.isascii()
    assert f"In-Reply-To: {long_id}\r\n".encode() in wire
    assert f"References: {long_id}\r\n".encode() in wire
