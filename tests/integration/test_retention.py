"""Retention: ended watches go with everything hanging off them; active or pending things stay."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import create_async_engine

from bridge.runtime import retention_step
from bridge.store import Store
from bridge.store.engine import async_url
from bridge.store.retention import PRUNE_LOCK
from bridge.store.tables import deliveries, delivery_attempts, events, upstream_jobs, watches
from tests.integration.api_support import NOW, Api, running_api, seed_event
from tests.integration.test_poller import KEY, _job, rig

DAY = timedelta(days=1)


async def _count(store: Store, table: Any, *conditions: Any) -> int:
    async with store.db.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table).where(*conditions)))


async def _status(api: Api, watch_id: str) -> int:
    return (await api.http.get(f"/v1/watches/{watch_id}", headers=api.auth())).status_code


async def _attempt(store: Store, delivery_id: str) -> None:
    async with store.db.engine.begin() as conn:
        await conn.execute(
            delivery_attempts.insert().values(
                delivery_id=delivery_id, attempted_at=NOW, status_code=500, duration_ms=3.0
            )
        )


async def test_retention_deletes_a_finished_watch_and_keeps_an_active_one(storage_url):
    async with running_api(storage_url) as api:
        prune = retention_step(api.store, days=1, now=api.clock)
        finished = (await api.create()).json()["watch"]
        active = (await api.create()).json()["watch"]
        _, ids = await seed_event(
            api.store,
            watch_id=finished["id"],
            sequence=1,
            destinations={"webhook_url": "delivered"},
        )
        await seed_event(
            api.store, watch_id=active["id"], sequence=1, destinations={"webhook_url": "delivered"}
        )
        await _attempt(api.store, ids["webhook_url"])
        assert (
            await api.http.delete(f"/v1/watches/{finished['id']}", headers=api.auth())
        ).is_success

        api.clock.advance(hours=23)
        assert await prune(None) == 0  # ended 23 hours ago: not yet
        assert await _status(api, finished["id"]) == 200

        api.clock.advance(hours=2)
        assert await prune(None) == 1
        assert await prune(None) == 0
        assert await _status(api, finished["id"]) == 404
        gone_events = await api.http.get(f"/v1/watches/{finished['id']}/events", headers=api.auth())
        assert gone_events.status_code == 404
        assert await _count(api.store, events, events.c.watch_id == finished["id"]) == 0
        assert await _count(api.store, deliveries, deliveries.c.watch_id == finished["id"]) == 0
        assert await _count(api.store, delivery_attempts) == 0
        assert (
            await _count(api.store, upstream_jobs, upstream_jobs.c.job_id == finished["job_id"])
            == 0
        )

        assert await _status(api, active["id"]) == 200
        assert await _count(api.store, events, events.c.watch_id == active["id"]) == 1
        assert (
            await _count(api.store, upstream_jobs, upstream_jobs.c.job_id == active["job_id"]) == 1
        )


async def test_retention_keeps_a_dead_delivery_until_it_is_old_enough(storage_url):
    async with running_api(storage_url) as api:
        prune = retention_step(api.store, days=1, now=api.clock)
        watch = (await api.create()).json()["watch"]
        _, ids = await seed_event(
            api.store, watch_id=watch["id"], sequence=1, destinations={"webhook_url": "dead"}
        )
        await _attempt(api.store, ids["webhook_url"])
        await api.http.delete(f"/v1/watches/{watch['id']}", headers=api.auth())
        # The delivery gave up 12 hours after the watch ended (its retries ran on).
        async with api.store.db.engine.begin() as conn:
            await conn.execute(
                update(deliveries)
                .where(deliveries.c.id == ids["webhook_url"])
                .values(updated_at=NOW + timedelta(hours=12))
            )

        api.clock.advance(days=1, hours=6)
        assert await prune(None) == 0
        dead = await api.http.get(f"/v1/watches/{watch['id']}/deliveries", headers=api.auth())
        assert [d["status"] for d in dead.json()["deliveries"]] == ["dead"]

        api.clock.advance(hours=7)  # a day and an hour after it died
        assert await prune(None) == 1
        assert await _status(api, watch["id"]) == 404
        assert await _count(api.store, delivery_attempts) == 0


async def test_retention_never_deletes_a_watch_with_a_pending_delivery(storage_url):
    async with running_api(storage_url) as api:
        watch = (await api.create()).json()["watch"]
        await seed_event(
            api.store, watch_id=watch["id"], sequence=1, destinations={"webhook_url": "pending"}
        )
        async with api.store.db.engine.begin() as conn:
            await conn.execute(
                update(watches)
                .where(watches.c.id == watch["id"])
                .values(status="completed", ended_at=NOW)
            )
        api.clock.advance(days=30)
        assert await retention_step(api.store, days=1, now=api.clock)(None) == 0
        assert await _status(api, watch["id"]) == 200


async def test_retention_keeps_a_job_another_watch_still_shows(storage_url):
    async with running_api(storage_url) as api:
        job_id = "6f1c3a52-8a34-4e0e-9d0c-2f7de0b7a111"
        old = (await api.create(job_id=job_id)).json()["watch"]
        await api.http.delete(f"/v1/watches/{old['id']}", headers=api.auth())
        api.clock.advance(days=1)
        newer = (await api.create(job_id=job_id)).json()["watch"]
        await api.http.delete(f"/v1/watches/{newer['id']}", headers=api.auth())
        api.clock.advance(hours=12)
        assert await retention_step(api.store, days=1, now=api.clock)(None) == 1
        assert await _status(api, old["id"]) == 404
        assert await _status(api, newer["id"]) == 200
        assert await _count(api.store, upstream_jobs, upstream_jobs.c.job_id == job_id) == 1


async def test_retention_prunes_in_bounded_batches_oldest_first(storage_url):
    async with running_api(storage_url) as api:
        created = []
        for _ in range(5):
            watch = (await api.create()).json()["watch"]
            await api.http.delete(f"/v1/watches/{watch['id']}", headers=api.auth())
            created.append(watch["id"])
            api.clock.advance(minutes=1)
        cutoff = api.clock() - timedelta(seconds=90)  # the first four ended before it
        batches = [
            await api.store.retention.prune(ended_before=cutoff, now=api.clock(), limit=3)
            for _ in range(3)
        ]
        assert batches == [3, 1, 0]
        assert [await _status(api, w) for w in created] == [404, 404, 404, 404, 200]


async def test_retention_runs_on_one_replica_at_a_time(pg_url):
    async with running_api(pg_url) as api:
        watch = (await api.create()).json()["watch"]
        await api.http.delete(f"/v1/watches/{watch['id']}", headers=api.auth())
        later = api.clock() + DAY
        other = create_async_engine(async_url(pg_url))
        try:
            async with other.begin() as conn:  # another replica is pruning
                await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PRUNE_LOCK})
                assert await api.store.retention.prune(ended_before=later, now=later, limit=10) == 0
            assert await api.store.retention.prune(ended_before=later, now=later, limit=10) == 1
        finally:
            await other.dispose()


async def test_retention_counts_from_when_the_poller_ended_the_watch(storage_url):
    async with rig(storage_url) as r:
        job_id = r.sim.create_job(KEY, total_items=1)
        r.sim.set_job(job_id, _job(job_id, "processing", [("a", "processing")]))
        watch = await r.watch(job_id)
        await r.run(1)
        r.clock.advance(3600)
        r.sim.set_job(job_id, _job(job_id, "completed", [("a", "completed")]))
        await r.run(10)
        ended = r.clock.now() - timedelta(seconds=10)
        async with r.store.db.engine.connect() as conn:
            ended_at = await conn.scalar(select(watches.c.ended_at))
        assert ended <= ended_at <= ended + timedelta(seconds=10)

        assert await r.store.retention.prune(ended_before=ended, now=r.clock.now(), limit=9) == 0
        cutoff = ended_at + timedelta(seconds=1)
        assert await r.store.retention.prune(ended_before=cutoff, now=r.clock.now(), limit=9) == 1
        assert await r.store.watches.get(watch_id=watch.id) is None
        assert await _count(r.store, upstream_jobs) == 0
