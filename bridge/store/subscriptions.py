"""Subscriptions: the Slack app's subscriptions and mutes, stored so they survive restarts and every
replica routes by the same set."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from bridge.events.subscriptions import Mute, Subscription, SubscriptionKind, SubscriptionSet
from bridge.ids import new_id
from bridge.store.database import Repository
from bridge.store.tables import slack_mutes, slack_subscriptions

S = slack_subscriptions
M = slack_mutes


class AlreadySubscribed(Exception):
    """The channel already has this subscription."""

    def __init__(self, existing: Subscription) -> None:
        super().__init__(existing.id)
        self.existing = existing


def _subscription(m: Any) -> Subscription:
    return Subscription(
        id=m["id"],
        team_id=m["team_id"],
        channel_id=m["channel_id"],
        kind=m["kind"],
        target=m["target"],
        account=m["account"],
        events=tuple(m["events"]),
        created_by=m["created_by"],
        created_at=m["created_at"],
    )


class Subscriptions(Repository):
    """Slack channels' subscriptions and mutes."""

    async def subscribe(
        self,
        *,
        team_id: str,
        channel_id: str,
        kind: SubscriptionKind,
        target: str,
        account: str | None,
        events: Sequence[str],
        created_by: str | None,
        now: datetime,
    ) -> Subscription:
        """Store a new subscription; raises AlreadySubscribed when the channel has it already."""
        row = {
            "id": new_id("sub"),
            "team_id": team_id,
            "channel_id": channel_id,
            "kind": kind,
            "target": target,
            "account": account,
            "events": list(events),
            "created_by": created_by,
            "created_at": now,
        }
        try:
            async with self.engine.begin() as conn:
                await conn.execute(S.insert().values(**row))
        except IntegrityError:
            existing = await self._find(channel_id=channel_id, kind=kind, target=target)
            if existing is None:
                raise
            raise AlreadySubscribed(existing) from None
        return _subscription(row)

    async def _find(self, *, channel_id: str, kind: str, target: str) -> Subscription | None:
        query = select(S).where(
            S.c.channel_id == channel_id, S.c.kind == kind, S.c.target == target
        )
        async with self.reader.connect() as conn:
            row = (await conn.execute(query)).first()
        return _subscription(row._mapping) if row else None

    async def unsubscribe(self, *, subscription_id: str, channel_id: str) -> bool:
        """Delete the channel's subscription; False when the channel has none of that id."""
        async with self.engine.begin() as conn:
            done = await conn.execute(
                delete(S).where(S.c.id == subscription_id, S.c.channel_id == channel_id)
            )
        return bool(done.rowcount)

    async def of_channel(self, channel_id: str) -> list[Subscription]:
        """The channel's subscriptions, oldest first."""
        query = select(S).where(S.c.channel_id == channel_id).order_by(S.c.id)
        async with self.reader.connect() as conn:
            return [_subscription(r._mapping) for r in await conn.execute(query)]

    async def page(
        self, *, limit: int, cursor: str | None
    ) -> tuple[list[Subscription], str | None]:
        """Every channel's subscriptions, oldest first, a page at a time."""
        query = select(S).order_by(S.c.id).limit(limit + 1)
        if cursor:
            query = query.where(S.c.id > cursor)
        async with self.reader.connect() as conn:
            rows = [_subscription(r._mapping) for r in await conn.execute(query)]
        page = rows[:limit]
        return page, (page[-1].id if len(rows) > limit else None)

    async def mute(
        self, *, channel_id: str, kind: str, target: str, created_by: str | None, now: datetime
    ) -> bool:
        """Mute a job or import for the channel; False when it was muted already."""
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    M.insert().values(
                        channel_id=channel_id,
                        kind=kind,
                        target=target,
                        created_by=created_by,
                        created_at=now,
                    )
                )
        except IntegrityError:
            return False
        return True

    async def current(self) -> SubscriptionSet:
        """Every subscription and mute, for routing."""
        async with self.reader.connect() as conn:
            subs = [
                _subscription(r._mapping) for r in await conn.execute(select(S).order_by(S.c.id))
            ]
            mutes = [
                Mute(r.channel_id, r.kind, r.target)
                for r in await conn.execute(select(M.c.channel_id, M.c.kind, M.c.target))
            ]
        return SubscriptionSet(tuple(subs), frozenset(mutes))
