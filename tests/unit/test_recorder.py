"""The recorder writes attempts in batches and tells each one how its write ended."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from bridge.delivery.recorder import GATHER_UNTIL, Recorder
from bridge.store.outbox import AttemptResult

AT = datetime(2026, 1, 1, tzinfo=UTC)


def result(n: int) -> AttemptResult:
    return AttemptResult(
        delivery_id=f"dlv_{n}", attempted_at=AT, duration_ms=1.0, status="delivered"
    )


class Outbox:
    """Records batches; the first write waits for `release` so more queue up behind it."""

    def __init__(self, *, fail: set[int] | None = None) -> None:
        self.batches: list[list[str]] = []
        self.release = asyncio.Event()
        self.fail = fail or set()

    async def record_attempts(self, results, *, now, owner) -> None:
        self.batches.append([r.delivery_id for r in results])
        if len(self.batches) == 1:
            await self.release.wait()
        if len(self.batches) in self.fail:
            raise RuntimeError("the database went away")


def recorder(
    outbox: Outbox, *, gather_s: float = 0.0, expecting: Callable[[], bool] = lambda: True
) -> Recorder:
    return Recorder(cast(Any, outbox), owner="me", gather_s=gather_s, expecting=expecting)


def released() -> Outbox:
    """An outbox whose first write does not wait."""
    outbox = Outbox()
    outbox.release.set()
    return outbox


async def queue_up(writer: Recorder, count: int) -> dict[int, bool]:
    """Submit `count` results one loop turn apart (the writer starts on the first, the rest queue
    behind it); returns what each is told, as it is told."""
    told: dict[int, bool] = {}
    for n in range(count):
        writer.submit(result(n), now=lambda: AT, done=lambda ok, n=n: told.__setitem__(n, ok))
        await asyncio.sleep(0)
    return told


async def test_a_small_batch_waits_for_more_results_and_a_full_one_is_written_at_once():
    outbox = released()
    writer = recorder(outbox, gather_s=0.2)
    for n in range(3):
        writer.submit(result(n), now=lambda: AT, done=lambda ok: None)
        await asyncio.sleep(0.01)  # each comes while the first waits for company
    async with asyncio.timeout(5):
        await writer.drain()
    assert outbox.batches == [["dlv_0", "dlv_1", "dlv_2"]]

    big = released()
    full = recorder(big, gather_s=3600)  # a batch of GATHER_UNTIL never waits
    for n in range(GATHER_UNTIL):
        full.submit(result(n), now=lambda: AT, done=lambda ok: None)
    async with asyncio.timeout(5):
        await full.drain()
    assert [len(b) for b in big.batches] == [GATHER_UNTIL]

    alone = released()
    last = recorder(alone, gather_s=3600, expecting=lambda: False)
    last.submit(result(0), now=lambda: AT, done=lambda ok: None)  # no send under way: no wait
    async with asyncio.timeout(5):
        await last.drain()
    assert alone.batches == [["dlv_0"]]


async def test_results_queued_during_a_write_go_in_the_next_batch_and_each_hears_it_was_written():
    outbox = Outbox()
    writer = recorder(outbox)
    told = await queue_up(writer, 5)
    outbox.release.set()
    async with asyncio.timeout(5):
        await writer.drain()
    assert outbox.batches == [["dlv_0"], ["dlv_1", "dlv_2", "dlv_3", "dlv_4"]]
    assert told == dict.fromkeys(range(5), True)


async def test_a_failed_write_tells_its_batch_false_and_the_next_batch_is_still_written():
    outbox = Outbox(fail={1})
    writer = recorder(outbox)
    told = await queue_up(writer, 3)
    outbox.release.set()
    async with asyncio.timeout(5):
        await writer.drain()
    assert told == {0: False, 1: True, 2: True}
    assert len(outbox.batches) == 2


async def test_cancelling_the_writer_tells_every_unwritten_result_false():
    outbox = Outbox()
    writer = recorder(outbox)
    told = await queue_up(writer, 4)
    writer.cancel()  # the first write never returns: shutdown past its deadline
    async with asyncio.timeout(5):
        await writer.drain()
    assert told == dict.fromkeys(range(4), False)
    assert outbox.batches == [["dlv_0"]]  # nothing more was written


async def test_a_follow_up_that_raises_does_not_keep_the_others_from_hearing(caplog):
    outbox = released()
    told: list[int] = []

    def done(ok: bool, n: int) -> None:
        if n == 0:
            raise ValueError("a bug in a follow-up")
        told.append(n)

    writer = recorder(outbox)
    for n in range(3):
        writer.submit(result(n), now=lambda: AT, done=lambda ok, n=n: done(ok, n))
    async with asyncio.timeout(5):
        await writer.drain()
    assert told == [1, 2]
    assert "follow-up failed" in caplog.text


@pytest.mark.parametrize("pending", [0, 1])
async def test_drain_returns_at_once_when_nothing_is_queued(pending):
    outbox = released()
    writer = recorder(outbox)
    if pending:
        writer.submit(result(0), now=lambda: AT, done=lambda ok: None)
    async with asyncio.timeout(5):
        await writer.drain()
    assert len(outbox.batches) == pending


async def test_cancelling_the_writer_before_it_starts_tells_every_result_false():
    outbox = Outbox()
    told: dict[int, bool] = {}
    writer = recorder(outbox)
    writer.submit(result(0), now=lambda: AT, done=lambda ok: told.__setitem__(0, ok))
    writer.cancel()  # before the writer task took its first step
    async with asyncio.timeout(5):
        await writer.drain()
    assert told == {0: False}
    assert outbox.batches == []
