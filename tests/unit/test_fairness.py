"""fair_order: clients take turns; within a turn, new and signalled jobs, then the most overdue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bridge.polling.fairness import fair_order
from bridge.store.rows import Waiting

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def job(
    client: str, job_id: str, *, due: float = 0, priority: int = 0, polled: float | None = None
):
    return Waiting(
        client, "main", job_id, priority, at(due), None if polled is None else at(polled)
    )


@pytest.mark.parametrize(
    ("queue", "last_served", "expected"),
    [
        # one client: new or signalled first, then the most overdue, then the least recently polled
        (
            [job("a", "old", due=-50), job("a", "new", priority=1), job("a", "older", due=-90)],
            {},
            ["new", "older", "old"],
        ),
        (
            [job("a", "recent", polled=-10), job("a", "stale", polled=-600), job("a", "never")],
            {},
            ["never", "stale", "recent"],
        ),
        # two clients alternate, the one served longest ago first, however urgent the other's jobs
        (
            [job("a", f"a{i}", priority=1) for i in range(3)] + [job("b", "b0"), job("b", "b1")],
            {"a": at(-5), "b": at(-40)},
            ["b0", "a0", "b1", "a1", "a2"],
        ),
        # a client not served in the rolling hour goes first
        ([job("a", "a0", priority=1), job("b", "b0", due=60)], {"a": at(-3000)}, ["b0", "a0"]),
        # clients never served: the most urgent job breaks the tie
        ([job("a", "a0", due=-5), job("b", "b0", priority=1)], {}, ["b0", "a0"]),
        # a job two clients watch is polled once, in the first turn that reaches it
        (
            [job("a", "shared"), job("b", "shared"), job("b", "b1", due=5)],
            {"a": at(-10), "b": at(-20)},
            ["shared", "b1"],
        ),
    ],
)
def test_fair_order(queue, last_served, expected):
    assert [w.job_id for w in fair_order(queue, last_served)] == expected


def test_fair_order_gives_a_flooding_client_only_its_share():
    flood = [job("a", f"a{i}", priority=1) for i in range(1000)]
    lone = [job("b", f"b{i}", due=i) for i in range(5)]
    order = fair_order(flood + lone, {"a": at(-1), "b": at(-2)})
    assert [w.client for w in order[:10]] == ["b", "a"] * 5
