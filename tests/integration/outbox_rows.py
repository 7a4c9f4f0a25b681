"""Test helper: fill the outbox as the poller does (a watch, its events, one delivery per destination)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from bridge.events.payloads import WatchRef, event_payload
from bridge.ids import new_id
from bridge.store import Store, WatchRecord
from bridge.store.tables import deliveries, events


async def add_watch(
    store: Store,
    *,
    at: datetime,
    webhook_url: str | None,
    client: str = "shop",
    account: str = "main",
    job_id: str | None = None,
) -> WatchRecord:
    """Register a watch the way the API does."""
    watch, _ = await store.watches.create(
        client=client,
        account=account,
        job_id=job_id or new_id("job"),
        webhook_url=webhook_url,
        events=["*"],
        metadata={"order": "A-1"},
        idempotency_key=None,
        now=at,
        ttl=timedelta(hours=48),
    )
    return watch


async def add_events(
    store: Store,
    watch: WatchRecord,
    *,
    count: int,
    at: datetime,
    first: int = 1,
    destinations: Sequence[str] = ("webhook_url",),
) -> list[str]:
    """Commit `count` events of `watch` and their pending deliveries; returns the event ids."""
    event_rows, delivery_rows = [], []
    for sequence in range(first, first + count):
        event_id = new_id("evt")
        payload = event_payload(
            event_type="job.processing",
            event_id=event_id,
            sequence=sequence,
            watch=WatchRef(watch.id, watch.job_id, watch.account, watch.metadata),
            job=None,
            previous_status="queued",
            timestamp=at,
        )
        event_rows.append(
            {
                "id": event_id,
                "watch_id": watch.id,
                "sequence": sequence,
                "type": payload["type"],
                "payload": payload,
                "created_at": at,
            }
        )
        delivery_rows += [
            {
                "id": new_id("dlv"),
                "event_id": event_id,
                "watch_id": watch.id,
                "sequence": sequence,
                "stream": f"watch:{watch.id}",
                "position": sequence,
                "destination": destination,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": at,
                "created_at": at,
                "updated_at": at,
            }
            for destination in destinations
        ]
    async with store.db.engine.begin() as conn:
        await conn.execute(events.insert(), event_rows)
        await conn.execute(deliveries.insert(), delivery_rows)
    return [row["id"] for row in event_rows]
