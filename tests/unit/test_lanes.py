import asyncio
from datetime import UTC, datetime

import pytest

from bridge.delivery.lanes import Held, Lanes, destination_of, origin
from bridge.store.busy import Busy
from bridge.store.outbox import ClaimedDelivery

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
        stream="watch:wat",
    )


def held(r: ClaimedDelivery) -> Held:
    return Held(r, lambda: AT, 0.0, asyncio.get_running_loop().create_future())


def lanes(**limits: int) -> Lanes:
    return Lanes(**({"sending": 64, "per_destination": 2, "held": 256, "depth": 4} | limits))


def fill(where: Lanes, *rows: ClaimedDelivery) -> list[str]:
    """Hold the rows, start what may start; returns the started ids."""
    for r in rows:
        where.hold(held(r))
    return [h.row.id for h in where.take_ready()]


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


async def test_a_lane_sends_its_share_at_once_and_the_next_row_when_one_finishes():
    where = lanes()
    started = fill(where, *(row(f"a{n}", url=f"https://a.example/{n}") for n in range(3)))
    assert started == ["a0", "a1"]  # per_destination 2
    assert fill(where, row("b0", url="https://b.example/0")) == ["b0"]  # another lane goes on
    assert where.take_ready() == []
    where.finish("a0")
    assert [h.row.id for h in where.take_ready()] == ["a2"]
    assert where.sending() == 3


async def test_lanes_take_turns_under_the_replica_limit():
    where = lanes(sending=3, per_destination=3)
    a = [row(f"a{n}", url=f"https://a.example/{n}") for n in range(3)]
    b = [row(f"b{n}", url=f"https://b.example/{n}") for n in range(3)]
    assert fill(where, *a, *b) == ["a0", "b0", "a1"]
    where.finish("a0")
    assert [h.row.id for h in where.take_ready()] == ["b1"]  # b's turn


async def test_admission_fills_each_lane_to_its_depth_within_the_limit():
    where = lanes(depth=3)
    fill(where, row("a0", url="https://a.example/0"))
    admit = where.admission(limit=4)
    candidates = [
        row("a0", url="https://a.example/0"),  # held already
        row("a1", url="https://a.example/1"),
        row("a2", url="https://a.example/2"),
        row("a3", url="https://a.example/3"),  # a.example's lane is full
        row("s1", channel="slack"),
        row("s2", channel="slack"),
        row("s3", channel="slack"),  # over the limit of 4
    ]
    assert [c.id for c in candidates if admit(c)] == ["a1", "a2", "s1", "s2"]


async def test_admission_stops_at_the_replica_room():
    where = lanes(held=4, depth=4, sending=4)
    fill(where, *(row(f"a{n}", url=f"https://a.example/{n}") for n in range(3)))
    assert where.room() == 1
    admit = where.admission(limit=10)
    assert admit(row("b0", url="https://b.example/0"))
    assert not admit(row("c0", url="https://c.example/0"))


async def test_a_lane_with_rows_waiting_is_busy_until_they_have_started():
    where = lanes(per_destination=1)
    fill(where, row("a0", url="https://a.example/0"), row("a1", url="https://a.example/1"))
    fill(where, row("s0", channel="slack"))
    assert where.busy() == Busy(origins=frozenset({"https://a.example"}))
    assert not where.claimable(("origin", "https://a.example"))
    assert where.claimable(("channel", "slack"))  # sending, nothing waiting
    assert where.finish("a0") == ("origin", "https://a.example")
    assert [h.row.id for h in where.take_ready()] == ["a1"]
    assert where.busy() == Busy()
    assert where.finish("a0") is None  # twice is harmless


async def test_release_waiting_hands_back_the_rows_not_started():
    where = lanes(per_destination=1)
    fill(where, *(row(f"a{n}", url=f"https://a.example/{n}") for n in range(3)))
    assert sorted(h.row.id for h in where.release_waiting()) == ["a1", "a2"]
    assert "a1" not in where and "a0" in where
    assert where.room() == 255


@pytest.mark.parametrize(
    "limits",
    [{"per_destination": 0}, {"per_destination": 65}, {"depth": 1}, {"held": 10}],
)
def test_lanes_reject_inconsistent_limits(limits):
    with pytest.raises(ValueError, match="lane limits"):
        lanes(**limits)


async def test_a_lane_is_claimable_again_once_no_more_than_refill_at_rows_wait():
    where = lanes(per_destination=1, refill_at=2)
    a = ("origin", "https://a.example")
    for n in range(3):
        where.hold(held(row(f"a{n}", url=f"https://a.example/{n}")))
    assert not where.claimable(a)  # 3 waiting, over the mark of 2
    assert where.busy() == Busy(origins=frozenset({"https://a.example"}))
    assert [h.row.id for h in where.take_ready()] == ["a0"]
    assert where.claimable(a)  # 2 waiting: the next batch is read while those go out
    assert where.busy() == Busy()


async def test_refill_at_never_lets_a_lane_hold_more_than_its_depth():
    where = lanes(per_destination=1, depth=4, refill_at=2)
    a = ("origin", "https://a.example")
    assert fill(where, *(row(f"a{n}", url=f"https://a.example/{n}") for n in range(3))) == ["a0"]
    assert where.claimable(a)  # 1 sending, 2 waiting
    admit = where.admission(limit=10)
    assert admit(row("a3", url="https://a.example/3"))  # the lane's 4th row: its depth
    assert not admit(row("a4", url="https://a.example/4"))
    assert admit(row("b0", url="https://b.example/0"))  # other lanes are not held back


async def test_a_lane_claimable_at_the_highest_refill_mark_is_still_full_at_its_depth():
    where = lanes(per_destination=1, depth=4, refill_at=3)
    a = ("origin", "https://a.example")
    assert fill(where, *(row(f"a{n}", url=f"https://a.example/{n}") for n in range(4))) == ["a0"]
    assert where.claimable(a) and where.busy() == Busy()  # 3 waiting, at the mark
    admit = where.admission(limit=10)
    assert not admit(row("a4", url="https://a.example/4"))  # 4 held: the lane is at its depth
    where.finish("a0")
    assert where.admission(limit=10)(row("a4", url="https://a.example/4"))


def test_refill_at_the_highest_mark_is_accepted():
    assert lanes(depth=4, refill_at=3).refill_at == 3
    assert lanes().refill_at == 0


@pytest.mark.parametrize(("depth", "refill_at"), [(4, -1), (4, 4), (4, 5), (2, 2)])
def test_lanes_reject_a_refill_mark_outside_the_depth(depth, refill_at):
    with pytest.raises(ValueError, match="refill mark"):
        lanes(depth=depth, refill_at=refill_at)


async def test_a_lane_at_its_refill_mark_prompts_one_claim_until_rows_come_in():
    where = lanes(per_destination=1, depth=8, refill_at=2)
    a = ("origin", "https://a.example")
    fill(where, *(row(f"a{n}", url=f"https://a.example/{n}") for n in range(4)))  # 1 sends, 3 wait
    assert not where.wants_claim(a)  # above the mark
    where.finish("a0")
    where.take_ready()  # a1 sends, 2 wait: at the mark
    assert where.wants_claim(a)
    assert not where.wants_claim(a)  # once: the claim was asked for
    fill(where, row("a4", url="https://a.example/4"))  # a claim brought rows: it may ask again
    where.finish("a1")
    where.take_ready()  # a2 sends, a3 and a4 wait
    assert where.wants_claim(a)
    for sent in ("a2", "a3", "a4"):
        where.finish(sent)
        where.take_ready()
    assert where.wants_claim(a) and where.wants_claim(a)  # empty: every send may prompt one
    assert where.wants_claim(("channel", "unknown"))  # no lane at all
