"""The outbox claim's SQL: due_heads(...) picks which pending deliveries a claim may lease, oldest
due first; CANDIDATES reads them by key, LEASE takes them.

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
from sqlalchemy.sql.dml import ReturningUpdate
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

# Every pending row with what the claim's filters read, and the least pending position of its
# stream to its destination. Filters apply outside: a row that may not go yet (leased, not due,
# for a busy receiver) still holds back the later rows of its stream.
_PENDING = (
    select(
        D.c.id,
        D.c.position,
        D.c.next_attempt_at,
        D.c.lease_expires_at,
        D.c.change_key,
        D.c.destination,
        watches.c.id.label("watch_row"),
        watches.c.status.label("watch_status"),
        watches.c.webhook_url.label("watch_url"),
        imports.c.webhook_url.label("import_url"),
        func.min(D.c.position).over(partition_by=(D.c.stream, D.c.destination)).label("head"),
    )
    .select_from(
        D.outerjoin(watches, watches.c.id == D.c.watch_id).outerjoin(
            imports, imports.c.id == D.c.watch_id
        )
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
    """The ids of up to `limit` deliveries a claim may lease at `due_now` (a parameter: execute
    with `{DUE_NOW: now}`), oldest due first: pending, due, unleased, still wanted, heading their
    stream, and not for a `busy` destination. Built once per (busy, limit): adapting the filters
    to the window's subquery was a tenth of a claim's CPU."""
    p = _PENDING.c
    now = bindparam(DUE_NOW, type_=D.c.next_attempt_at.type)
    return (
        select(p.id)
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


_CLAIM_COLUMNS: tuple[Any, ...] = (
    D.c.id,
    D.c.event_id,
    D.c.watch_id,
    D.c.sequence,
    D.c.destination,
    D.c.attempts,
    D.c.created_at,
    events.c.type.label("event_type"),
    events.c.created_at.label("event_created_at"),
    events.c.payload,
    # An import's own events belong to the import (its id in `watch_id`), not to a watch.
    func.coalesce(watches.c.client, imports.c.client).label("client"),
    func.coalesce(watches.c.account, imports.c.account).label("account"),
    func.coalesce(watches.c.job_id, "").label("job_id"),
    func.coalesce(watches.c.webhook_url, imports.c.webhook_url).label("webhook_url"),
    upstream_jobs.c.snapshot.label("job"),
    D.c.stream,
)
_CLAIM_JOIN = (
    D.join(events, events.c.id == D.c.event_id)
    .outerjoin(watches, watches.c.id == D.c.watch_id)
    .outerjoin(imports, imports.c.id == D.c.watch_id)
    .outerjoin(
        upstream_jobs,
        and_(
            upstream_jobs.c.account == watches.c.account, upstream_jobs.c.job_id == watches.c.job_id
        ),
    )
)


# The claim's and the record's statements, built once (building them per call was a tenth of the
# deliverer's CPU); every value is a parameter. The ids are an expanding IN on SQLite and one
# array parameter on PostgreSQL (`= ANY(:claim_ids)`), where rendering an IN of 256 placeholders
# at every claim was a sixtieth of a drain's CPU.
_CLAIM_NOW = bindparam("claim_now", type_=D.c.lease_expires_at.type)


def _ids_match(array: bool) -> ColumnElement[bool]:
    if array:
        return D.c.id == any_(bindparam("claim_ids", type_=ARRAY(String)))
    return D.c.id.in_(bindparam("claim_ids", expanding=True))


def _candidates(array: bool) -> Select[Any]:
    return (
        select(*_CLAIM_COLUMNS)
        .select_from(_CLAIM_JOIN)
        .where(_ids_match(array), D.c.status == "pending", lease_free(_CLAIM_NOW))
        .order_by(D.c.next_attempt_at, D.c.id)
        .limit(bindparam("claim_limit"))
    )


def _lease(array: bool) -> ReturningUpdate[Any]:
    return (
        update(D)
        .where(_ids_match(array), lease_free(_CLAIM_NOW))
        .values(lease_owner=bindparam("claim_owner"), lease_expires_at=bindparam("claim_until"))
        .returning(D.c.id)
    )


CANDIDATES = _candidates(array=False)  # SQLite
LEASE = _lease(array=False)
CANDIDATES_LOCKED = _candidates(array=True).with_for_update(of=D, skip_locked=True)  # PostgreSQL
LEASE_ARRAY = _lease(array=True)
