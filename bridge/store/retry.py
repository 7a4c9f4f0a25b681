"""Manual retry of a dead delivery: back to pending, due now, for the delivery loop to send again."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.store.records import DeliveryRecord
from bridge.store.tables import deliveries, watches
from bridge.store.watches import delivery_record


class RetryQueries:
    """The manual-retry half of the store; mixed into `Store`."""

    engine: AsyncEngine
    dialect: str

    async def retry_delivery(
        self, *, client: str, delivery_id: str, now: datetime
    ) -> tuple[DeliveryRecord, bool] | None:
        """Reset the client's dead delivery to pending, due `now`, lease cleared.

        Returns None when the delivery is unknown or belongs to another client's watch; otherwise
        (delivery as it now is, whether it was reset). It is not reset unless it is `dead`, nor when
        its watch was cancelled (nothing more is sent for a cancelled watch). Attempts are kept, so
        a retry that fails again goes straight back to dead.
        """
        owned = (
            select(deliveries, watches.c.status.label("watch_status"))
            .select_from(deliveries.join(watches, watches.c.id == deliveries.c.watch_id))
            .where(deliveries.c.id == delivery_id, watches.c.client == client)
        )
        async with self.engine.begin() as conn:
            row = (await conn.execute(owned)).first()
            if row is None:
                return None
            if row.status != "dead" or row.watch_status == "cancelled":
                return delivery_record(row), False
            result = await conn.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery_id, deliveries.c.status == "dead")
                .values(
                    status="pending",
                    next_attempt_at=now,
                    lease_owner=None,
                    lease_expires_at=None,
                    updated_at=now,
                )
            )
            fresh = (
                await conn.execute(select(deliveries).where(deliveries.c.id == delivery_id))
            ).one()
        return delivery_record(fresh), bool(result.rowcount)
