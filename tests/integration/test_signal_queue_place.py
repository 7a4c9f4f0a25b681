"""A signal brings a job's poll forward, never back: signals for busy jobs cannot starve a job
waiting for its first poll (seen in `demo --import`, where four jobs signalled every 0.6 s)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bridge.store import open_store
from bridge.store.tables import upstream_jobs

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
WAITING = "0b6f4a8e-2f7e-4c1a-9d7e-1c2b3a4d5e6f"
BUSY = "1c7f4a8e-2f7e-4c1a-9d7e-1c2b3a4d5e6f"


async def _due(store, job_id):
    async with store.db.engine.connect() as conn:
        query = select(upstream_jobs.c.next_poll_at, upstream_jobs.c.priority).where(
            upstream_jobs.c.job_id == job_id
        )
        return (await conn.execute(query)).one()


async def test_a_signal_never_moves_a_due_job_back_in_the_queue(tmp_path):
    store = await open_store(f"sqlite:///{tmp_path}/b.db")
    try:
        for job_id, at in ((WAITING, T0), (BUSY, T0 + timedelta(seconds=1))):
            await store.watches.create(
                client="shop", account="main", job_id=job_id, webhook_url=None, events=["*"],
                metadata={}, idempotency_key=None, now=at, ttl=timedelta(hours=1),
            )  # fmt: skip
        later = T0 + timedelta(seconds=30)
        assert await store.jobs.signal(account="main", job_id=WAITING, now=later)
        assert await _due(store, WAITING) == (T0, 1)  # still first in line, as registered
        # A job due later than the signal comes forward to now.
        async with store.db.engine.begin() as conn:
            await conn.execute(
                upstream_jobs.update()
                .where(upstream_jobs.c.job_id == BUSY)
                .values(next_poll_at=T0 + timedelta(hours=1), priority=0)
            )
        assert await store.jobs.signal(account="main", job_id=BUSY, now=later)
        assert await _due(store, BUSY) == (later, 1)
    finally:
        await store.close()
