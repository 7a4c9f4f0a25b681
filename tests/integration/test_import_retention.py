"""Retention of imports: an ended import goes, after its watches, with its events, deliveries,
attempts and failures; an open or running one, or one with a pending delivery, stays."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update

from bridge.runtime import retention_step
from bridge.store import Store
from bridge.store.tables import (
    deliveries,
    delivery_attempts,
    events,
    import_failures,
    imports,
    watches,
)
from tests.integration.import_support import ImportDriver, new_job_id, snapshot

DAY = timedelta(days=1)


async def _count(store: Store, table: Any, *where: Any) -> int:
    async with store.db.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table).where(*where)))


async def _deliver_all(d: ImportDriver) -> None:
    """Every delivery so far went out now, with one attempt each."""
    async with d.store.db.engine.begin() as conn:
        ids = list((await conn.execute(select(deliveries.c.id))).scalars())
        await conn.execute(update(deliveries).values(status="delivered", updated_at=d.clock.now()))
        if ids:
            await conn.execute(
                delivery_attempts.insert(),
                [
                    {
                        "delivery_id": i,
                        "attempted_at": d.clock.now(),
                        "status_code": 204,
                        "duration_ms": 5.0,
                    }
                    for i in ids
                ],
            )


async def _ended_import(d: ImportDriver) -> tuple[str, list[str]]:
    imp = await d.create()
    jobs = [new_job_id(), new_job_id()]
    await d.add(imp, jobs)
    await d.close(imp)
    await d.poll(snapshot(jobs[0], "completed", ["completed", "completed"]))
    await d.poll(snapshot(jobs[1], "partially_completed", ["completed", "failed"]))
    record = await d.store.imports.get(import_id=imp)
    assert record is not None and record.tally.status == "partially_completed"
    return imp, jobs


async def test_an_ended_import_goes_after_its_watches_and_live_ones_stay(store):
    d = ImportDriver(store)
    prune = retention_step(store, days=1, now=d.clock.now)
    ended, _ = await _ended_import(d)
    running = await d.create()
    job = new_job_id()
    await d.add(running, [job])
    await d.poll(snapshot(job, "processing", ["processing", "failed"]))
    empty_open = await d.create()
    cancelled = await d.create()
    await d.add(cancelled, [new_job_id()])
    await d.cancel(cancelled)
    await _deliver_all(d)
    assert await _count(store, import_failures, import_failures.c.import_id == ended) == 1

    d.clock.advance(hours=23)
    assert await prune(None) == 0
    d.clock.advance(hours=2)
    assert await prune(None) == 3 + 2  # three watches, then the two ended imports
    assert await prune(None) == 0

    for gone in (ended, cancelled):
        assert await store.imports.get(import_id=gone) is None
        assert await _count(store, events, events.c.watch_id == gone) == 0
        assert await _count(store, deliveries, deliveries.c.watch_id == gone) == 0
        assert await _count(store, import_failures, import_failures.c.import_id == gone) == 0
        assert await _count(store, watches, watches.c.import_id == gone) == 0
    live = await store.imports.get(import_id=running)
    assert live is not None and live.tally.status == "running"
    assert await store.imports.get(import_id=empty_open) is not None
    assert await _count(store, events, events.c.watch_id == running) == 2
    assert await _count(store, import_failures, import_failures.c.import_id == running) == 1
    # Only the running import's deliveries (and its watch's) keep their attempts.
    remaining = select(deliveries.c.id).scalar_subquery()
    assert (
        await _count(store, delivery_attempts, ~delivery_attempts.c.delivery_id.in_(remaining)) == 0
    )
    assert await _count(store, imports) == 2


async def test_an_import_waits_for_its_pending_delivery_and_its_recent_watches(store):
    d = ImportDriver(store)
    prune = retention_step(store, days=1, now=d.clock.now)
    imp, _ = await _ended_import(d)
    await _deliver_all(d)
    async with store.db.engine.begin() as conn:  # its last event is still being sent
        last = await conn.scalar(
            select(func.max(deliveries.c.id)).where(deliveries.c.watch_id == imp)
        )
        await conn.execute(
            update(deliveries).where(deliveries.c.id == last).values(status="pending")
        )
    d.clock.advance(days=2)
    assert await prune(None) == 2  # its two watches, not the import
    assert await store.imports.get(import_id=imp) is not None
    async with store.db.engine.begin() as conn:
        await conn.execute(
            update(deliveries)
            .where(deliveries.c.id == last)
            .values(status="dead", updated_at=d.clock.now())
        )
    d.clock.advance(hours=23)
    assert await prune(None) == 0  # died a day ago less an hour
    d.clock.advance(hours=2)
    assert await prune(None) == 1
    assert await store.imports.get(import_id=imp) is None


async def test_an_import_stays_while_a_watch_of_it_ended_recently(store):
    d = ImportDriver(store)
    imp, _ = await _ended_import(d)
    await _deliver_all(d)
    async with store.db.engine.begin() as conn:  # a watch that ended later than the import
        await conn.execute(
            update(watches).where(watches.c.import_id == imp).values(ended_at=d.clock.now() + DAY)
        )
    d.clock.advance(days=1, hours=1)
    cutoff = d.clock.now() - DAY
    assert await store.retention.prune(ended_before=cutoff, now=d.clock.now(), limit=10) == 0
    assert await store.imports.get(import_id=imp) is not None
