"""active_watches / plan_one / write_plans: one poll batch's planning and writes, inside the
caller's transaction; storage_down tells a failed database from rows that cannot be written.

Rows of one kind are written with one executemany each, so a batch of 200 polls costs a handful of
statements, not a thousand.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import InterfaceError, OperationalError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.events.import_view import ImportRecord
from bridge.store.import_writes import import_record
from bridge.store.listed import pair_of
from bridge.store.records import WatchRecord
from bridge.store.rows import POSITIONS_PER_POLL, JobRow, JobWrite
from bridge.store.tables import deliveries, events, imports, upstream_jobs, watches
from bridge.store.upsert import insert_for
from bridge.store.watches import watch_record

log = logging.getLogger(__name__)
J = upstream_jobs
Key = tuple[str, str]
Planner = Callable[[JobRow, list[WatchRecord]], JobWrite]


def fields_of(obj: Any) -> dict[str, Any]:
    """A slotted dataclass's fields, shallow: `dataclasses.asdict` deep-copies every snapshot and
    payload, which was most of a poll's CPU."""
    return {name: getattr(obj, name) for name in obj.__slots__}


async def active_watches(
    conn: AsyncConnection, jobs: list[JobRow]
) -> tuple[dict[Key, list[WatchRecord]], dict[str, ImportRecord]]:
    """The active watches of the jobs, locked in id order, with the job's state filled in; and
    on SQLite the imports they belong to, read in the same statement.

    SQLite has one writer, so the imports read here stay as read until this transaction ends and
    their roll-up needs no statement of its own to read them: a statement costs a trip through
    aiosqlite's thread, most of a poll's CPU. PostgreSQL locks the imports later, in id order.
    """
    keys = [(j.account, j.job_id) for j in jobs]
    by_key = {(j.account, j.job_id): j for j in jobs}
    joined = conn.dialect.name == "sqlite"
    query = select(watches)
    if joined:
        query = select(watches, *_IMPORT_COLUMNS).outerjoin(
            imports, imports.c.id == watches.c.import_id
        )
    rows = await conn.execute(
        query.where(
            pair_of(watches.c.account, watches.c.job_id, keys, conn.dialect.name),
            watches.c.status == "active",
        )
        .order_by(watches.c.id)
        .with_for_update(of=watches)
    )
    out: dict[Key, list[WatchRecord]] = defaultdict(list)
    found: dict[str, ImportRecord] = {}
    for row in rows:
        job = by_key[(row.account, row.job_id)]
        mapping = {
            **row._mapping,
            "snapshot": job.snapshot,
            "last_polled_at": job.last_polled_at,
            "next_poll_at": job.next_poll_at,
        }
        out[(row.account, row.job_id)].append(watch_record(mapping))
        if joined and row.import_id is not None and row.imp__id is not None:
            found.setdefault(row.import_id, _joined_import(row._mapping))
    return out, found


_IMPORT_COLUMNS = [c.label(f"imp__{c.name}") for c in imports.c]


def _joined_import(m: Any) -> ImportRecord:
    return import_record({c.name: m[f"imp__{c.name}"] for c in imports.c})


async def write_plans(
    conn: AsyncConnection, jobs: list[JobRow], writes: list[JobWrite], *, now: datetime
) -> None:
    """Write each job's planned update, events, deliveries and watch changes, batched."""
    watch_params, event_rows, delivery_rows = [], [], []
    for write in writes:
        watch_params += [
            {
                "b_id": w.id,
                **fields_of(w),
                "updated_at": now,
                "ended_at": None if w.status == "active" else now,
            }
            for w in write.watches
        ]
        event_rows += [fields_of(e) for e in write.events]
        delivery_rows += [
            {
                **fields_of(d),
                "status": "pending",
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
            }
            for d in write.deliveries
        ]
    await _write_jobs(conn, jobs, writes, now=now)
    if watch_params:
        for p in watch_params:
            del p["id"]
        await conn.execute(update(watches).where(watches.c.id == bindparam("b_id")), watch_params)
    if event_rows:
        await conn.execute(events.insert(), event_rows)
    if delivery_rows:
        await _after_earlier(conn, delivery_rows)
        # A channel that already heard of a change (from an earlier poll of an older watch, or from
        # another replica) keeps its one delivery: the unique (destination, change_key) decides.
        insert = insert_for(conn.dialect.name, deliveries).on_conflict_do_nothing(
            index_elements=["destination", "change_key"]
        )
        await conn.execute(insert, delivery_rows)


async def _write_jobs(
    conn: AsyncConnection, jobs: list[JobRow], writes: list[JobWrite], *, now: datetime
) -> None:
    """Each job's new state and schedule (ending its lease), or its polling stopped."""
    changed: list[dict[str, Any]] = []
    kept: list[dict[str, Any]] = []
    stopped: list[dict[str, Any]] = []
    for job, write in zip(jobs, writes, strict=True):
        key = {"b_account": job.account, "b_job_id": job.job_id}
        if write.job is None:
            if write.stop_polling:
                stopped.append(key)
            continue
        params = {
            **key,
            **fields_of(write.job),
            "lease_owner": None,
            "lease_expires_at": None,
            "updated_at": now,
        }
        # The very dict read: the snapshot did not change, so it is neither encoded nor written.
        if write.job.snapshot is job.snapshot:
            del params["snapshot"]
            kept.append(params)
        else:
            changed.append(params)
    by_key = J.c.account == bindparam("b_account"), J.c.job_id == bindparam("b_job_id")
    for rows in (changed, kept):
        if rows:
            await conn.execute(update(J).where(*by_key), rows)
    if stopped:
        await conn.execute(update(J).where(*by_key).values(next_poll_at=None), stopped)


async def _after_earlier(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Move a job stream's new positions past those it holds, keeping their order within the poll.

    Positions start from the poll's time, but replicas' clocks differ and a watch's end can be
    planned in a poll's millisecond; the job's row is locked, so the order of writing is the order
    of the job's changes, and nothing written now may go before what was written earlier.
    """
    streams = {r["stream"] for r in rows if r["change_key"] is not None}
    if not streams:
        return
    D = deliveries
    held = await conn.execute(
        select(D.c.stream, func.max(D.c.position).label("last"))
        .where(D.c.stream.in_(streams))
        .group_by(D.c.stream)
    )
    last: dict[str, int] = {row.stream: row.last for row in held}
    first: dict[str, int] = {}
    for r in rows:
        if r["stream"] in last:
            first[r["stream"]] = min(first.get(r["stream"], r["position"]), r["position"])
    for r in rows:
        stream = r["stream"]
        if stream in last and first[stream] <= last[stream]:
            slots = last[stream] // POSITIONS_PER_POLL + 1 - first[stream] // POSITIONS_PER_POLL
            r["position"] += slots * POSITIONS_PER_POLL


def plan_one(
    job: JobRow, watching: list[WatchRecord], planner: Planner, on_error: Planner | None
) -> JobWrite | None:
    """The planner's write, else `on_error`'s: one job's bad data must not roll back the batch."""
    for plan in (planner, on_error):
        if plan is None:
            return None
        try:
            return plan(job, watching)
        except Exception:
            log.exception(
                "planning a job failed", extra={"account": job.account, "job_id": job.job_id}
            )
    return None


def storage_down(exc: StatementError) -> bool:
    """The database itself failed (connection, disk, lock), not one job's rows."""
    return isinstance(exc, OperationalError | InterfaceError) or bool(
        getattr(exc, "connection_invalidated", False)
    )
