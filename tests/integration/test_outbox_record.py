"""Outbox.record_attempts on both backends (PostgreSQL takes a batch as arrays, SQLite as rows):
every field of the attempt and of the delivery moved on, a put-off send, a lease lost, a watch
cancelled in flight."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from bridge.store import Store
from bridge.store.outbox import ERROR_CHARS, EXCERPT_CHARS, AttemptResult
from bridge.store.tables import deliveries
from tests.integration.outbox_rows import add_events, add_watch

AT = datetime(2026, 12, 3, 12, tzinfo=UTC)


async def _claimed(store: Store, count: int, *, owner: str = "me"):
    watches = [
        await add_watch(store, at=AT, webhook_url="https://hooks.example/in") for _ in range(count)
    ]
    for watch in watches:
        await add_events(store, watch, count=1, at=AT)
    claimed = await store.outbox.claim_due(now=AT, owner=owner, lease_s=30, limit=count)
    assert len(claimed) == count
    return watches, claimed


async def _delivery(store: Store, watch_id: str):
    [found] = await store.watches.deliveries(watch_id=watch_id)
    return found


async def test_a_batch_moves_each_delivery_on_and_records_each_attempt(store: Store) -> None:
    watches, claimed = await _claimed(store, 4)
    by_watch = {row.watch_id: row.id for row in claimed}
    ids = [by_watch[w.id] for w in watches]
    retry_at = AT + timedelta(seconds=30)
    later = AT + timedelta(seconds=5)
    results = [
        AttemptResult(ids[0], AT, 12.5, "delivered", status_code=200, response_excerpt="ok"),
        AttemptResult(
            ids[1],
            AT,
            30.0,
            "pending",
            next_attempt_at=retry_at,
            status_code=503,
            error="HTTP 503 " + "e" * 2000,
            response_excerpt="x" * 5000,
        ),
        AttemptResult(ids[2], AT, 1.0, "dead", status_code=410, error="HTTP 410"),
        # A put-off send: no attempt counted, only the next attempt moves.
        AttemptResult(ids[3], AT, 0.0, "pending", next_attempt_at=retry_at, counted=False),
    ]
    await store.outbox.record_attempts(results, now=later, owner="me")

    delivered, retried, dead, put_off = [await _delivery(store, w.id) for w in watches]
    assert (delivered.status, delivered.attempts, delivered.last_status_code) == (
        "delivered",
        1,
        200,
    )
    assert (delivered.delivered_at, delivered.next_attempt_at, delivered.updated_at) == (
        AT,
        None,
        later,
    )
    assert (retried.status, retried.attempts, retried.next_attempt_at) == ("pending", 1, retry_at)
    assert retried.last_error == ("HTTP 503 " + "e" * 2000)[:ERROR_CHARS]
    assert (dead.status, dead.attempts, dead.last_error, dead.next_attempt_at) == (
        "dead",
        1,
        "HTTP 410",
        None,
    )
    assert (put_off.status, put_off.attempts, put_off.next_attempt_at) == ("pending", 0, retry_at)

    attempts = await store.outbox.attempts_of(ids)
    assert sorted(attempts) == sorted(ids[:3])  # the put-off send left no attempt
    [first] = attempts[ids[0]]
    assert (first.attempted_at, first.duration_ms, first.status_code) == (AT, 12.5, 200)
    assert (first.error, first.response_excerpt) == (None, "ok")
    [second] = attempts[ids[1]]
    assert len(second.response_excerpt) == EXCERPT_CHARS and len(second.error) == ERROR_CHARS

    # The lease is given back: the retried row is claimed again once due, the put-off one too.
    again = await store.outbox.claim_due(now=retry_at, owner="next", lease_s=30, limit=10)
    assert sorted(row.id for row in again) == sorted([ids[1], ids[3]])


async def test_a_nul_or_a_lone_surrogate_in_an_answer_is_recorded_without_failing_the_batch(
    store: Store,
) -> None:
    # PostgreSQL's text holds no NUL, and no store takes a lone surrogate (a mail server's byte
    # that is not UTF-8, as aiosmtplib decodes it): written as is, either failed the batch's write,
    # and every delivery in the batch (other clients' too) was sent again when its lease ran out.
    watches, claimed = await _claimed(store, 2)
    hostile, other = (row.id for row in claimed)
    results = [
        AttemptResult(
            hostile,
            AT,
            1.0,
            "pending",
            next_attempt_at=AT,
            status_code=500,
            error="HTTP 500 \x00",
            response_excerpt="a\x00b\udcff",
        ),
        AttemptResult(other, AT, 1.0, "delivered", status_code=200, response_excerpt="ok"),
    ]
    await store.outbox.record_attempts(results, now=AT, owner="me")
    attempts = await store.outbox.attempts_of([hostile, other])
    [first] = attempts[hostile]
    assert (first.error, first.response_excerpt) == ("HTTP 500 \ufffd", "a\ufffdb?")
    [second] = attempts[other]
    assert second.status_code == 200
    states = {(await _delivery(store, w.id)).status for w in watches}
    assert states == {"pending", "delivered"}


async def test_a_lost_lease_or_a_cancelled_delivery_is_not_moved_on(store: Store) -> None:
    watches, claimed = await _claimed(store, 2, owner="slow")
    by_watch = {row.watch_id: row.id for row in claimed}
    lost, cancelled = by_watch[watches[0].id], by_watch[watches[1].id]
    async with store.db.engine.begin() as conn:
        await conn.execute(
            update(deliveries).where(deliveries.c.id == lost).values(lease_owner="fast")
        )
        await conn.execute(
            update(deliveries).where(deliveries.c.id == cancelled).values(status="dead")
        )
    results = [AttemptResult(i, AT, 5.0, "delivered", status_code=200) for i in (lost, cancelled)]
    await store.outbox.record_attempts(results, now=AT, owner="slow")
    kept, dead = [await _delivery(store, w.id) for w in watches]
    assert (kept.status, kept.attempts) == ("pending", 0)
    assert (dead.status, dead.attempts) == ("dead", 0)
    attempts = await store.outbox.attempts_of([lost, cancelled])
    assert sorted(attempts) == sorted([lost, cancelled])  # what happened is recorded all the same
