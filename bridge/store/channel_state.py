"""Channel state: small JSON values a channel keeps across restarts (a Slack message's ts)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from bridge.store.database import Repository
from bridge.store.tables import channel_state
from bridge.store.upsert import insert_for


class ChannelState(Repository):
    """Implements `bridge.delivery.channels.StateStore` on the database."""

    async def get_state(self, key: str) -> dict[str, Any] | None:
        """The value stored under `key`, or None."""
        async with self.reader.connect() as conn:
            row = (
                await conn.execute(select(channel_state.c.value).where(channel_state.c.key == key))
            ).first()
        return dict(row[0]) if row else None

    async def put_state(self, key: str, value: dict[str, Any]) -> None:
        """Store `value` under `key`, replacing what was there."""
        stmt = insert_for(self.dialect, channel_state).values(
            key=key, value=value, updated_at=datetime.now(UTC)
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["key"],
            set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
        )
        async with self.engine.begin() as conn:
            await conn.execute(stmt)

    async def claim_state(self, key: str, value: dict[str, Any]) -> dict[str, Any] | None:
        """Store `value` unless `key` holds something; None when stored, else the value held.

        The primary key decides between replicas: an INSERT ... ON CONFLICT DO NOTHING either
        inserts or sees the winner's row, read back in the same transaction.
        """
        stmt = (
            insert_for(self.dialect, channel_state)
            .values(key=key, value=value, updated_at=datetime.now(UTC))
            .on_conflict_do_nothing(index_elements=["key"])
        )
        held = select(channel_state.c.value).where(channel_state.c.key == key)
        async with self.engine.begin() as conn:
            if (await conn.execute(stmt)).rowcount:
                return None
            row = (await conn.execute(held)).first()
        return dict(row[0]) if row else None
