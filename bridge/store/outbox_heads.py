"""The outbox claim's SQL: due_heads(...) picks which pending deliveries a claim may lease, oldest
due first, with what the lanes' admission needs (destination, URL); on PostgreSQL LEASED_LOCKED
locks, leases and reads the admitted ones in one statement, on SQLite CANDIDATES reads them by key
and LEASE takes them.

A delivery may go only when it heads its stream to its destination (no earlier one of the stream
is pending there): event N+1 of a watch after event N. The head is found with a window over the
pending rows (the least position per stream and destination) instead of a self-join: PostgreSQL's
planner, with statistics from before a burst filled the outbox (a fresh database, or thousands of
deliveries queued since the last ANALYZE), turned that self-join into a nested loop reading every
pending row once per pending row (0.1-0.4 s a claim at 2,000 pending). The window reads them
once, whatever the statistics say; the watches and imports the filters need are joined by key.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    String,
    and_,
    any_,
    bindparam,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.util import ClauseAdapter

from bridge.store.busy import Busy, not_busy
from bridge.store.tables import deliveries, events, imports, upstream_jobs, watches

D = deliveries

# Nothing more goes to a cancelled watch's own webhook; a configured channel (a delivery with a
# change key) is about the job, and still hears the changes observed before the cancel.
# An import's own webhook hears everything, its cancellation included.
STILL_WANTED = or_(
    D.c.change_key.is_not(None), watches.c.status != "cancelled", watches.c.id.is_(None)
)

# Every pending row with the least pending position of its stream to its destination. Filters
# apply outside: a row that may not go yet (leased, not due, for a busy receiver) still holds
# back the later rows of its stream. The watch or import the filters read is joined outside too,
# for the heads alone, not for every pending row.
_PENDING = (
    select(
        D.c.id,
        D.c.watch_id,
        D.c.position,
        D.c.next_attempt_at,
        D.c.lease_expires_at,
        D.c.change_key,
        D.c.destination,
        func.min(D.c.position).over(partition_by=(D.c.stream, D.c.destination)).label("head"),
    )
    .where(D.c.status == "pending")
    .subquery("pending")
)
_ON_PENDING = ClauseAdapter(_PENDING)  # the filters, written on the tables, read the subquery


def _outside(clause: ColumnElement[bool]) -> ColumnElement[bool]:
    adapted: ColumnElement[bool] = _ON_PENDING.traverse(clause)
    return adapted


DUE_NOW = "due_now"  # the claim's moment, a parameter of `due_heads`' statement


def lease_free(now: datetime | BindParameter[datetime]) -> ColumnElement[bool]:
    """The row's lease (if any) has run out by `now`."""
    return or_(D.c.lease_expires_at.is_(None), D.c.lease_expires_at <= now)


@functools.lru_cache(maxsize=256)
def due_heads(*, busy: Busy, limit: int) -> Select[Any]:
    """The id, destination and webhook URL of up to `limit` deliveries a claim may lease at
    `due_now` (a parameter: execute with `{DUE_NOW: now}`), oldest due first: pending, due,
    unleased, still wanted, heading their stream, and not for a `busy` destination. Built once
    per (busy, limit): adapting the filters to the window's subquery was a tenth of a claim's
    CPU."""
    p = _PENDING.c
    now = bindparam(DUE_NOW, type_=D.c.next_attempt_at.type)
    url = func.coalesce(watches.c.webhook_url, imports.c.webhook_url).label("webhook_url")
    return (
        select(p.id, p.destination, url)
        .select_from(
            _PENDING.outerjoin(watches, watches.c.id == p.watch_id).outerjoin(
                imports, imports.c.id == p.watch_id
            )
        )
        .where(
            p.position == p.head,
            p.next_attempt_at <= now,
            _outside(lease_free(now)),
            _outside(STILL_WANTED),
            _outside(not_busy(busy)),
        )
        .order_by(p.next_attempt_at, p.id)
        .limit(limit)
    )


def _claim_columns(rows: Any) -> tuple[Any, ...]:
    """What a claimed row carries, read from `rows` (the deliveries table, or the leased rows)."""
    r = rows.c
    return (
        r.id,
        r.event_id,
        r.watch_id,
        r.sequence,
        r.destination,
        r.attempts,
        r.created_at,
        events.c.type.label("event_type"),
        events.c.created_at.label("event_created_at"),
        events.c.payload,
        # An import's own events belong to the import (its id in `watch_id`), not to a watch.
        func.coalesce(watches.c.client, imports.c.client).label("client"),
        func.coalesce(watches.c.account, imports.c.account).label("account"),
        func.coalesce(watches.c.job_id, "").label("job_id"),
        func.coalesce(watches.c.webhook_url, imports.c.webhook_url).label("webhook_url"),
        upstream_jobs.c.snapshot.label("job"),
        r.stream,
    )


def _claim_join(rows: Any) -> Any:
    """`rows` with their event, watch or import, and the watch's job."""
    return (
        rows.join(events, events.c.id == rows.c.event_id)
        .outerjoin(watches, watches.c.id == rows.c.watch_id)
        .outerjoin(imports, imports.c.id == rows.c.watch_id)
        .outerjoin(
            upstream_jobs,
            and_(
                upstream_jobs.c.account == watches.c.account,
                upstream_jobs.c.job_id == watches.c.job_id,
            ),
        )
    )


# The claim's statements, built once (building them per call was a tenth of the deliverer's
# CPU); every value is a parameter.
_CLAIM_NOW = bindparam("claim_now", type_=D.c.lease_expires_at.type)
_CLAIM_IDS: BindParameter[Any] = bindparam("claim_ids", expanding=True)

# SQLite (one process, its claims serialised on one connection, in one transaction): the rows by
# key, checked again, then leased.
CANDIDATES = (
    select(*_claim_columns(D))
    .select_from(_claim_join(D))
    .where(D.c.id.in_(_CLAIM_IDS), D.c.status == "pending", lease_free(_CLAIM_NOW))
    .order_by(D.c.next_attempt_at, D.c.id)
)
LEASE = (
    update(D)
    .where(D.c.id.in_(_CLAIM_IDS), lease_free(_CLAIM_NOW))
    .values(lease_owner=bindparam("claim_owner"), lease_expires_at=bindparam("claim_until"))
    .returning(D.c.id)
)


def _leased_locked() -> Select[Any]:
    """PostgreSQL: one statement, run on its own, that locks the rows by key (`FOR UPDATE SKIP
    LOCKED`: a row another replica is claiming now is passed over), leases those still pending
    and unleased, and reads them with their event, watch and job.

    The status and lease are checked on the locked rows (FOR UPDATE returns their latest
    version), not in the lock's own WHERE, and the update joins them by key: given 'status =
    pending', a planner with statistics from before a burst scanned every pending row through
    ix_deliveries_due (O(pending) per claim, as the record's statement once did)."""
    ids = bindparam("claim_ids", type_=ARRAY(String))
    locked = (
        select(D.c.id, D.c.status, D.c.lease_expires_at)
        .where(D.c.id == any_(ids))
        .with_for_update(skip_locked=True)
        .cte("locked")
    )
    leased = (
        update(D)
        .where(
            D.c.id == locked.c.id,
            locked.c.status == "pending",
            or_(locked.c.lease_expires_at.is_(None), locked.c.lease_expires_at <= _CLAIM_NOW),
        )
        .values(lease_owner=bindparam("claim_owner"), lease_expires_at=bindparam("claim_until"))
        .returning(*(D.c[name] for name in _LEASED_COLUMNS))
        .cte("leased")
    )
    return (
        select(*_claim_columns(leased))
        .select_from(_claim_join(leased))
        .order_by(leased.c.next_attempt_at, leased.c.id)
    )


_LEASED_COLUMNS = (
    "id",
    "event_id",
    "watch_id",
    "sequence",
    "destination",
    "attempts",
    "created_at",
    "next_attempt_at",
    "stream",
)
LEASED_LOCKED = _leased_locked()
