"""Outbox queries: lease due deliveries in event order, record each attempt and what comes next.

A claim is a lease: the row is ours until `lease_expires_at`, and a killed replica's rows come back
when their leases expire. A claim reads which rows may go (`bridge.store.outbox_heads`), then
those rows by key; on PostgreSQL it locks them with `FOR UPDATE SKIP LOCKED`, so replicas
claiming at the same moment take different rows; SQLite serves one process, whose single pooled
connection serialises claims.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Result, Row
from sqlalchemy.exc import DBAPIError

from bridge.store.busy import NOTHING_BUSY, Busy
from bridge.store.database import Repository
from bridge.store.outbox_heads import CANDIDATES, DUE_NOW, LEASE, LEASED_LOCKED, due_heads
from bridge.store.outbox_heads import STILL_WANTED as STILL_WANTED  # ops.py reads it here
from bridge.store.outbox_record import ERROR_CHARS as ERROR_CHARS
from bridge.store.outbox_record import EXCERPT_CHARS as EXCERPT_CHARS
from bridge.store.outbox_record import write_attempts
from bridge.store.records import DeliveryRecord
from bridge.store.tables import (
    deliveries,
    delivery_attempts,
    imports,
    watches,
)
from bridge.store.watches import delivery_record

HEAD_SPARES = 4  # a claim reads the ids of this many times the rows it may lease
SQLITE_MAX_IDS = 900  # but no more than this on SQLite, where each id is a bound variable

D = deliveries


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A leased delivery with everything sending it needs: the event, the watch, the latest job."""

    id: str
    event_id: str
    watch_id: str
    sequence: int
    destination: str
    attempts: int  # attempts made before this claim
    created_at: datetime  # committed with its event: where delivery latency is measured from
    event_type: str
    event_created_at: datetime
    payload: dict[str, Any]  # the event as CONTRACT section 4
    client: str
    account: str
    job_id: str  # "" for an import's own event
    webhook_url: str | None
    job: dict[str, Any] | None  # upstream_jobs.snapshot of the watch's job, None before a poll
    stream: str  # `import:<id>...` for an import's events and the jobs told inside it


# A claimed row becomes a ClaimedDelivery by position (`_claimed`): the claim's columns must be
# its fields, in order.
for _claim in (CANDIDATES, LEASED_LOCKED):
    if tuple(_claim.selected_columns.keys()) != ClaimedDelivery.__slots__:
        raise RuntimeError("the outbox claim's columns are not ClaimedDelivery's fields")


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """One attempt made, and the delivery's state after it (from `bridge.delivery.retry.next_step`)."""

    delivery_id: str
    attempted_at: datetime
    duration_ms: float
    status: str  # delivered | pending | dead
    next_attempt_at: datetime | None = None  # set when pending
    status_code: int | None = None
    error: str | None = None
    response_excerpt: str | None = None
    # False for a send the channel put off (status pending until `next_attempt_at`): no attempt
    # is recorded or counted, so a coalesced Slack edit never spends the retry schedule.
    counted: bool = True


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One recorded attempt of a delivery."""

    id: int
    delivery_id: str
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: float
    response_excerpt: str | None


class Claimed(list[ClaimedDelivery]):
    """A claim's leased rows, oldest due first, and how many rows it admitted that another
    replica took first (`passed_over`)."""

    passed_over: int = 0


@dataclass(frozen=True, slots=True)
class DueHead:
    """A delivery a claim may lease, as far as whether to take it is concerned."""

    id: str
    destination: str
    webhook_url: str | None


def _admitted(heads: Result[Any], admit: Callable[[DueHead], bool] | None, limit: int) -> list[str]:
    """The ids of the first `limit` due heads `admit` accepts, in due order."""
    ids: list[str] = []
    for row in heads:
        if admit is None or admit(DueHead(row.id, row.destination, row.webhook_url)):
            ids.append(row.id)
            if len(ids) == limit:
                break
    return ids


def _claimed(row: Row[Any]) -> ClaimedDelivery:
    # The claim's columns are the fields, in order (checked at import, below the class).
    return ClaimedDelivery(*row)  # type: ignore[call-arg]


class Outbox(Repository):
    """The outbox: lease due deliveries, record attempts, send a dead one again."""

    async def claim_due(
        self,
        *,
        now: datetime,
        owner: str,
        lease_s: float,
        limit: int,
        busy: Busy = NOTHING_BUSY,
        admit: Callable[[DueHead], bool] | None = None,
    ) -> Claimed:
        """Lease up to `limit` due deliveries whose earlier events are settled, oldest due first.

        Rows for `busy` destinations are not read; of the due rows, only those `admit` accepts
        (asked in due order: the caller's concurrency policy) are read in full and leased. Rows
        admitted but taken meanwhile by another replica are counted in `passed_over`: the caller
        may claim again at once rather than wait for its next tick.
        """
        # Spares: rows `admit` refuses (their lane is full) leave room for others' rows. SQLite
        # binds the ids one variable each: fewer than its oldest default limit (999).
        spares = limit * HEAD_SPARES
        if self.dialect != "postgresql":
            spares = min(spares, SQLITE_MAX_IDS)
        heads = due_heads(busy=busy, limit=spares)
        lease = {
            "claim_now": now,
            "claim_owner": owner,
            "claim_until": now + timedelta(seconds=lease_s),
        }
        if self.dialect == "postgresql":
            # Each statement on its own: the lease is checked again under the row locks, so a row
            # another replica leased or sent since the heads were read is passed over. The lease
            # commits with its statement: should the connection drop before the rows are read
            # back, they come back when it ends, as a crashed replica's do.
            async with self.engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                ids = _admitted(await conn.execute(heads, {DUE_NOW: now}), admit, limit)
                if not ids:
                    return Claimed()
                leased = await conn.execute(LEASED_LOCKED, {"claim_ids": ids, **lease})
                taken = Claimed(_claimed(row) for row in leased)
            taken.passed_over = len(ids) - len(taken)
            return taken
        # SQLite: one process, whose single pooled connection serialises claims.
        async with self.engine.begin() as conn:
            ids = _admitted(await conn.execute(heads, {DUE_NOW: now}), admit, limit)
            if not ids:
                return Claimed()
            found = await conn.execute(CANDIDATES, {"claim_ids": ids, "claim_now": now})
            candidates = [_claimed(row) for row in found]
            if not candidates:
                return Claimed()
            taken = await conn.execute(LEASE, {"claim_ids": [c.id for c in candidates], **lease})
            leased = set(taken.scalars())
        return Claimed(c for c in candidates if c.id in leased)

    async def record_attempts(
        self, results: Sequence[AttemptResult], *, now: datetime, owner: str
    ) -> None:
        """Record the attempts and move each delivery on, unless its lease passed to another owner.

        An attempt is recorded even when the lease was lost (it happened); the delivery's state is
        then left to the replica that holds the lease now. A put-off send (`counted` False) leaves
        no attempt and only moves the delivery's next attempt.
        """
        if not results:
            return
        # Updated in id order, the order cancel_watch locks them in: two writers never deadlock.
        results = sorted(results, key=lambda r: r.delivery_id)
        try:
            await self._write_attempts(results, now=now, owner=owner)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            # The connection was lost (a server restarted since it was last used): these webhooks
            # were sent, and unrecorded they would be sent again when their leases end. Once more,
            # on a fresh connection; should the lost write have committed after all, the lease
            # check leaves the deliveries as they are (only the attempts are listed twice).
            await self._write_attempts(results, now=now, owner=owner)

    async def _write_attempts(
        self, results: Sequence[AttemptResult], *, now: datetime, owner: str
    ) -> None:
        if self.dialect == "postgresql":
            # One statement, its own transaction (`write_attempts`): no BEGIN or COMMIT to wait on.
            async with self.engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await write_attempts(conn, results, now=now, owner=owner)
            return
        async with self.engine.begin() as conn:
            await write_attempts(conn, results, now=now, owner=owner)

    async def release(self, *, delivery_ids: Sequence[str], owner: str) -> None:
        """Give back leases `owner` holds on deliveries it will not send after all (shutdown)."""
        if not delivery_ids:
            return
        async with self.engine.begin() as conn:
            await conn.execute(
                update(D)
                .where(D.c.id.in_(sorted(delivery_ids)), D.c.lease_owner == owner)
                .values(lease_owner=None, lease_expires_at=None)
            )

    async def attempts(self, *, delivery_id: str) -> list[AttemptRecord]:
        """Every recorded attempt of one delivery, oldest first."""
        return (await self.attempts_of([delivery_id])).get(delivery_id, [])

    async def attempts_of(self, delivery_ids: Sequence[str]) -> dict[str, list[AttemptRecord]]:
        """Every recorded attempt of each of these deliveries, oldest first, in one query."""
        if not delivery_ids:
            return {}
        query = (
            select(delivery_attempts)
            .where(delivery_attempts.c.delivery_id.in_(sorted(set(delivery_ids))))
            .order_by(delivery_attempts.c.id)
        )
        found: dict[str, list[AttemptRecord]] = {}
        async with self.engine.connect() as conn:
            for r in await conn.execute(query):
                record = AttemptRecord(**{n: r._mapping[n] for n in AttemptRecord.__slots__})
                found.setdefault(record.delivery_id, []).append(record)
        return found

    async def retry(
        self,
        *,
        delivery_id: str,
        now: datetime,
        client: str | None = None,
        destination: str | None = None,
    ) -> tuple[DeliveryRecord, bool] | None:
        """Reset a dead delivery to pending, due `now`, lease cleared.

        With `client` and `destination`, only a delivery of that client's watches to that
        destination is found (a client retries only its own webhook's). Returns None when no such
        delivery exists; otherwise (delivery as it now is, whether it was reset). It is not reset
        unless it is `dead`, nor when it is to a cancelled watch's own webhook (nothing more is sent
        for a cancelled watch; a configured channel is about the job). Attempts are kept, so a retry that fails again goes straight back to dead.
        """
        found = (
            select(deliveries, watches.c.status.label("watch_status"))
            .select_from(
                deliveries.outerjoin(watches, watches.c.id == deliveries.c.watch_id).outerjoin(
                    imports, imports.c.id == deliveries.c.watch_id
                )
            )
            .where(deliveries.c.id == delivery_id)
        )
        if client is not None:
            found = found.where(func.coalesce(watches.c.client, imports.c.client) == client)
        if destination is not None:
            found = found.where(deliveries.c.destination == destination)
        async with self.engine.begin() as conn:
            row = (await conn.execute(found)).first()
            if row is None:
                return None
            if row.status != "dead" or (row.watch_status == "cancelled" and not row.change_key):
                return delivery_record(row), False
            result = await conn.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery_id, deliveries.c.status == "dead")
                .values(**redelivery(now))
            )
            fresh = (
                await conn.execute(select(deliveries).where(deliveries.c.id == delivery_id))
            ).one()
        return delivery_record(fresh), bool(result.rowcount)


def redelivery(now: datetime) -> dict[str, Any]:
    """The values that send a dead delivery again: pending, due `now`, no lease."""
    return {
        "status": "pending",
        "next_attempt_at": now,
        "lease_owner": None,
        "lease_expires_at": None,
        "updated_at": now,
    }
