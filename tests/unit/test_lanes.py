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


def ids(where: Lanes) -> list[str]:
    return [h.row.id for h in where.take_ready()]


async def test_a_receiver_that_answers_fast_is_sent_more_at_once_up_to_grow_to():
    where = lanes(per_destination=2, grow_to=4, depth=16)
    a = ("origin", "https://a.example")
    assert fill(where, *(row(f"a{n}", url=f"https://a.example/{n}") for n in range(10))) == [
        "a0",
        "a1",
    ]
    where.sent("a0", fast=True)  # 3 at once now: a2 and a3 start
    assert where.limit(a) == 3
    assert ids(where) == ["a2", "a3"]
    where.sent("a1", fast=True)
    where.sent("a2", fast=True)  # 4, and no further: with a3 still sending, 3 more start
    assert where.limit(a) == 4
    assert ids(where) == ["a4", "a5", "a6"]
    where.sent("a3", fast=True)
    assert where.limit(a) == 4
    assert ids(where) == ["a7"]
    assert where.sending() == 4


async def test_a_failed_or_slow_send_halves_a_receivers_lane_but_never_below_per_destination():
    where = lanes(per_destination=2, grow_to=8, depth=32)
    a = ("origin", "https://a.example")
    fill(where, *(row(f"a{n}", url=f"https://a.example/{n}") for n in range(20)))
    for n in range(6):
        where.sent(f"a{n}", fast=True)
        where.take_ready()
    assert where.limit(a) == 8
    assert where.sending() == 8  # a6 to a13
    where.sent("a6")  # not fast: an error, a timeout or a slow answer
    assert where.limit(a) == 4
    assert where.take_ready() == []  # 7 still sending: none starts
    where.sent("a7")
    where.sent("a8")
    assert where.limit(a) == 2  # 4 // 2, then never below per_destination
    for n in range(9, 13):
        where.finish(f"a{n}")  # given up: the limit stays
    assert ids(where) == ["a14"]  # a13 and a14: 2 at once
    assert where.sending() == 2


async def test_a_configured_channel_lane_never_grows():
    where = lanes(per_destination=1, grow_to=4, depth=8)
    slack = ("channel", "ops-slack")
    fill(where, *(row(f"s{n}", channel="ops-slack") for n in range(4)))
    where.sent("s0", fast=True)
    assert where.limit(slack) == 1
    assert ids(where) == ["s1"]  # one at a time still
    where.sent("s1", fast=True)
    assert where.limit(slack) == 1
    assert ids(where) == ["s2"]
    assert where.sending() == 1


@pytest.mark.parametrize("grow_to", [1, 65, 17])
def test_lanes_reject_growth_outside_per_destination_and_the_limits(grow_to):
    with pytest.raises(ValueError, match="growth"):
        lanes(per_destination=2, depth=16, grow_to=grow_to)
