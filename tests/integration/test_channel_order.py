"""A job's channel deliveries go out in the order its polls were written, whatever the clocks say.

Positions in a job's stream start from the poll's time; replicas' clocks differ, and a watch's end
can be planned in the same millisecond as a poll. The stream must still follow the order in which
the store wrote them, so no change overtakes an earlier one of the same job (CONTRACT sections 5, 6).
"""

from __future__ import annotations

from datetime import timedelta
from random import Random

from sqlalchemy import select

from bridge.config import parse_config
from bridge.events.routing import Router
from bridge.events.snapshot import ItemSnapshot, JobSnapshot
from bridge.polling.outcomes import Ok
from bridge.polling.planning import PlanContext, plan_end, plan_poll
from bridge.store import Store, open_store
from bridge.store.records import WatchRecord
from bridge.store.rows import JobRow
from bridge.store.tables import deliveries, events
from tests.clock import T0
from tests.integration.outbox_rows import add_watch

HOUR = timedelta(hours=1)
TTL = timedelta(hours=48)  # add_watch's
CONFIG = parse_config(
    """
channels:
  erp: {type: webhook, url: "https://erp.example.com/hooks", secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}
routes:
  - {events: ["*"], channels: [erp]}
""",
    env={},
)


def _ctx(seconds: float) -> PlanContext:
    return PlanContext(
        polling=CONFIG.polling,
        router=Router.from_config(CONFIG),
        now=T0 + timedelta(seconds=seconds),
        rng=Random(0),
    )


async def _poll(store: Store, watch: WatchRecord, *, at: float, status: str) -> None:
    item = ItemSnapshot(id="item-1", status=status, external_id="sku-1")
    snapshot = JobSnapshot(id=watch.job_id, status="processing", total_items=1, items=(item,))

    def planner(job: JobRow, watches: list[WatchRecord]):
        return plan_poll(job, watches, Ok(snapshot=snapshot, rate_limit=None), _ctx(at))

    await store.jobs.apply_plans([(watch.account, watch.job_id)], planner, now=_ctx(at).now)


async def _stream(store: Store) -> list[str]:
    """The channel's deliveries of the job in the order the claim lets them go: by position."""
    query = (
        select(events.c.type)
        .select_from(deliveries.join(events, events.c.id == deliveries.c.event_id))
        .where(deliveries.c.destination == "erp")
        .order_by(deliveries.c.position)
    )
    async with store.db.engine.connect() as conn:
        return list((await conn.execute(query)).scalars())


async def test_a_poll_written_later_by_a_replica_whose_clock_is_behind_goes_after(storage_url):
    store = await open_store(storage_url)
    try:
        watch = await add_watch(store, at=T0, webhook_url=None)
        await _poll(store, watch, at=10, status="processing")
        await _poll(store, watch, at=5, status="completed")  # another replica, 5 s behind
        assert await _stream(store) == ["item.processing", "job.processing", "item.completed"]
        claimed = await store.outbox.claim_due(now=T0 + HOUR, owner="r1", lease_s=1, limit=10)
        assert [c.event_type for c in claimed] == ["item.processing"]
    finally:
        await store.close()


async def test_a_poll_in_the_millisecond_of_a_watch_expiring_goes_after_it(storage_url):
    store = await open_store(storage_url)
    try:
        old = await add_watch(store, at=T0, webhook_url=None)
        await add_watch(store, at=T0 + HOUR, webhook_url=None, job_id=old.job_id)
        at = TTL.total_seconds() + 10
        await _poll(store, old, at=at - 1, status="processing")
        await store.jobs.apply_plans(
            [(old.account, old.job_id)],
            lambda job, ws: plan_end(job, ws, _ctx(at), reason="watch_expired", only_expired=True),
            now=_ctx(at).now,
        )
        await _poll(store, old, at=at, status="completed")  # the newer watch, same millisecond
        assert await _stream(store) == [
            "item.processing",
            "job.processing",
            "watch.expired",
            "item.completed",
        ]
    finally:
        await store.close()
