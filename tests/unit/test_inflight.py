from datetime import UTC, datetime

import pytest

from bridge.delivery.inflight import InFlight, destination_of, origin
from bridge.store.outbox import Busy, ClaimedDelivery

AT = datetime(2026, 1, 1, tzinfo=UTC)


def row(delivery_id: str, *, url: str | None = None, channel: str | None = None):
    return ClaimedDelivery(
        id=delivery_id,
        event_id="evt",
        watch_id="wat",
        sequence=1,
        destination=channel or "webhook_url",
        attempts=0,
        created_at=AT,
        event_type="job.processing",
        event_created_at=AT,
        payload={},
        client="shop",
        account="main",
        job_id="job",
        webhook_url=url,
        job=None,
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://hooks.example.com/a/b?c=1", "https://hooks.example.com"),
        ("https://hooks.example.com", "https://hooks.example.com"),
        ("http://127.0.0.1:9001/hook", "http://127.0.0.1:9001"),
        ("https://example.com?x=/y", "https://example.com"),
        ("https://example.com#frag", "https://example.com"),
        ("https://user:pw@example.com:8443/x", "https://user:pw@example.com:8443"),
    ],
)
def test_origin_is_the_url_up_to_its_path(url, expected):
    assert origin(url) == expected


def test_destination_is_the_origin_for_a_watch_webhook_and_the_name_for_a_channel():
    assert destination_of(row("d1", url="https://a.example/x")) == ("origin", "https://a.example")
    assert destination_of(row("d2", channel="ops-slack")) == ("channel", "ops-slack")


def test_admission_caps_each_destination_and_the_total():
    slots = InFlight(total=5, per_destination=2)
    slots.add(row("busy1", url="https://a.example/1"))
    admit = slots.admission(limit=10)
    rows = [
        row("a2", url="https://a.example/2"),
        row("a3", url="https://a.example/3"),  # a.example has its two now
        row("b1", url="https://b.example/1"),
        row("s1", channel="slack"),
        row("s2", channel="slack"),
        row("s3", channel="slack"),  # over slack's share, and over the total anyway
    ]
    assert [r.id for r in rows if admit(r)] == ["a2", "b1", "s1", "s2"]


def test_admission_refuses_a_row_still_in_flight_and_respects_the_limit():
    slots = InFlight(total=64, per_destination=4)
    slots.add(row("d1", url="https://a.example/1"))
    admit = slots.admission(limit=1)
    assert not admit(row("d1", url="https://a.example/1"))
    assert admit(row("d2", url="https://b.example/1"))
    assert not admit(row("d3", url="https://c.example/1"))


def test_busy_names_the_full_destinations_and_discard_frees_them():
    slots = InFlight(total=10, per_destination=2)
    for n in range(2):
        slots.add(row(f"a{n}", url=f"https://a.example/{n}"))
        slots.add(row(f"s{n}", channel="slack"))
    slots.add(row("b0", url="https://b.example/0"))
    assert slots.busy() == Busy(
        channels=frozenset({"slack"}), origins=frozenset({"https://a.example"})
    )
    assert (len(slots), slots.free(), "a0" in slots) == (5, 5, True)
    slots.discard("a0")
    slots.discard("a0")  # twice is harmless
    assert slots.busy() == Busy(channels=frozenset({"slack"}))
    assert "a0" not in slots


def test_inflight_rejects_limits_below_one():
    with pytest.raises(ValueError, match="at least 1"):
        InFlight(total=0, per_destination=1)
