"""Discovery's SQL: taking an account's next round, spending one list request from the account's poll
budget under the budget row's lock, and watching the jobs a listing (or a signal) found.

A list request is a poll: it is logged in poll_log (kind "list") like a job's poll, so the job claims
count it in the rolling hour and can never overspend with it. Whether one may start now is the
caller's policy (`ListPolicy`), decided with what this repository read under the lock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.ids import new_id
from bridge.store.claims import HOUR, in_flight, poll_windows
from bridge.store.database import Repository
from bridge.store.plan_writes import fields_of
from bridge.store.rows import BudgetRow
from bridge.store.tables import account_budgets, discovery_rounds, poll_log, watches
from bridge.store.upsert import insert_for
from bridge.store.watches import schedule_first_poll

B, R, W = account_budgets, discovery_rounds, watches
LIST = "list"  # poll_log.kind of a list request


@dataclass(frozen=True, slots=True)
class ListDemand:
    """What the policy reads to allow one more list request: the budget row and the rolling hour."""

    account: str
    budget: BudgetRow
    used_last_hour: int  # every poll and list request of the account in the rolling hour
    listed_last_hour: int  # the list requests among them
    last_listed_at: datetime | None  # the latest of them
    in_flight: int  # job polls leased and not yet written


# The budget row after one more list request, or None when it may not start now.
ListPolicy = Callable[[ListDemand], BudgetRow | None]


def discovery_key(account: str, job_id: str) -> str:
    """The idempotency key of discovery's watch of a job: the unique (client, key) index makes it
    one watch per account and job, whichever replica or path (listing or signal) gets there first."""
    key = f"{account}/{job_id}"
    return key if len(key) <= 255 else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _budget_row(row: Any) -> BudgetRow:
    return BudgetRow(**{f.name: row._mapping[f.name] for f in fields(BudgetRow)})


class Discovery(Repository):
    """Discovery rounds, list requests spent from the poll budget, and discovered jobs' watches."""

    async def take_round(
        self, *, account: str, now: datetime, interval: timedelta
    ) -> tuple[bool, datetime]:
        """Take the account's round if it is due (the next one is then `interval` away): returns
        whether it was taken here, and when the next round is due."""
        async with self.engine.begin() as conn:
            await conn.execute(
                insert_for(self.dialect, R).on_conflict_do_nothing(index_elements=["account"]),
                {"account": account, "next_round_at": None, "updated_at": now},
            )
            taken = await conn.execute(
                update(R)
                .where(R.c.account == account)
                .where(or_(R.c.next_round_at.is_(None), R.c.next_round_at <= now))
                .values(next_round_at=now + interval, updated_at=now)
            )
            if taken.rowcount:
                return True, now + interval
            due = await conn.scalar(select(R.c.next_round_at).where(R.c.account == account))
            return False, due or now

    async def claim_list_request(self, *, account: str, now: datetime, decide: ListPolicy) -> bool:
        """Spend one list request of the account's budget if `decide` allows it now, logging it in
        the poll log under the budget row's lock (the lock the job claims take)."""
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(B).where(B.c.account == account).with_for_update(skip_locked=True)
                )
            ).first()
            if row is None:  # no budget row yet, or a claim holds it this instant: next tick
                return False
            window = (await poll_windows(conn, accounts=[account], now=now))[account]
            listed = (
                await conn.execute(
                    select(func.count().label("n"), func.max(poll_log.c.at).label("latest"))
                    .where(poll_log.c.account == account, poll_log.c.kind == LIST)
                    .where(poll_log.c.at > now - HOUR)
                )
            ).one()
            leased = (await in_flight(conn, accounts=[account], now=now)).get(account, 0)
            after = decide(
                ListDemand(
                    account=account,
                    budget=_budget_row(row),
                    used_last_hour=window.used,
                    listed_last_hour=int(listed.n),
                    last_listed_at=listed.latest,
                    in_flight=leased,
                )
            )
            if after is None:
                return False
            await conn.execute(
                update(B).where(B.c.account == account).values(**fields_of(after), updated_at=now)
            )
            await conn.execute(
                poll_log.insert().values(account=account, at=now, client=None, kind=LIST)
            )
            return True

    async def watch(
        self,
        *,
        client: str,
        account: str,
        job_ids: Sequence[str],
        now: datetime,
        ttl: timedelta,
    ) -> list[str]:
        """Watch each job `client` (discovery) has never watched, as registration does (events
        ["*"], no webhook_url, polled first); returns the jobs newly watched."""
        keys = {discovery_key(account, job_id): job_id for job_id in job_ids}
        if not keys:
            return []
        added: list[str] = []
        async with self.engine.begin() as conn:
            known = set(
                await conn.scalars(
                    select(W.c.idempotency_key).where(
                        W.c.client == client, W.c.idempotency_key.in_(list(keys))
                    )
                )
            )
            for key, job_id in sorted(keys.items(), key=lambda kv: kv[1]):
                if key in known:
                    continue
                if await self._insert(
                    conn, client=client, account=account, job_id=job_id, key=key, now=now, ttl=ttl
                ):
                    added.append(job_id)
        return added

    async def _insert(
        self,
        conn: AsyncConnection,
        *,
        client: str,
        account: str,
        job_id: str,
        key: str,
        now: datetime,
        ttl: timedelta,
    ) -> bool:
        stmt = insert_for(self.dialect, W).values(
            id=new_id("wat"),
            client=client,
            account=account,
            job_id=job_id,
            status="active",
            webhook_url=None,
            events=["*"],
            metadata={},
            idempotency_key=key,
            last_sequence=0,
            created_at=now,
            updated_at=now,
            expires_at=now + ttl,
        )
        # Another replica (or a signal) may insert the same key meanwhile: theirs stands.
        done = await conn.execute(
            stmt.on_conflict_do_nothing(index_elements=["client", "idempotency_key"])
        )
        if not done.rowcount:
            return False
        await schedule_first_poll(conn, self.dialect, account=account, job_id=job_id, now=now)
        return True
