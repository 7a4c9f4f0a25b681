"""roll_up / write_import_events: fold what polls found into their imports, in the polls' transaction.

Lock order everywhere: a job's row, then its watches, then imports in id order; the import row is
updated with what changed (`bridge.events.rollup.fold`), never recounted, so two replicas polling
jobs of one import take turns on its row and both changes land.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.events.import_events import ImportEventPlanner, PlannedEvent
from bridge.events.import_view import ImportRecord
from bridge.events.rollup import JOB_STATES, Contribution, Tally, contribution, fold, settle
from bridge.events.snapshot import JobSnapshot
from bridge.ids import new_id
from bridge.store.records import WatchRecord
from bridge.store.rows import JobRow, JobWrite
from bridge.store.tables import deliveries, events, import_failures, imports, watches
from bridge.store.upsert import insert_for

I = imports  # noqa: E741
_FAILED = frozenset({"failed", "cancelled"})


@dataclass(frozen=True, slots=True)
class ImportChange:
    """One job's contribution to its import, before and after (old None: the job is new to it)."""

    import_id: str
    job_id: str
    old: Contribution | None
    new: Contribution
    failed_items: tuple[dict[str, Any], ...] = ()


def import_record(m: Any) -> ImportRecord:
    """An ImportRecord from an `imports` row."""
    tally = Tally(
        status=m["status"],
        closed=bool(m["closed"]),
        expected_jobs=m["expected_jobs"],
        jobs={"total": m["jobs_total"], **{s: m[f"jobs_{s}"] for s in JOB_STATES}},
        jobs_seen=m["jobs_seen"],
        images_total=m["images_total"],
        images_completed=m["images_completed"],
        images_failed=m["images_failed"],
        credits_used=m["credits_used"],
        started=bool(m["started"]),
        progress_tenths=m["progress_tenths"],
        stalled=bool(m["stalled"]),
        started_at=m["started_at"],
        last_finished_at=m["last_finished_at"],
        finished_by_minute=dict(m["finished_by_minute"] or {}),
        ended_at=m["ended_at"],
    )
    return ImportRecord(
        id=m["id"],
        client=m["client"],
        account=m["account"],
        name=m["name"],
        webhook_url=m["webhook_url"],
        events=tuple(m["events"]),
        metadata=dict(m["metadata"]),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        last_sequence=m["last_sequence"],
        tally=tally,
    )


def tally_columns(t: Tally) -> dict[str, Any]:
    """The `imports` columns a tally fills."""
    return {
        "status": t.status,
        "closed": t.closed,
        "expected_jobs": t.expected_jobs,
        "jobs_total": t.jobs["total"],
        **{f"jobs_{s}": t.jobs[s] for s in JOB_STATES},
        "jobs_seen": t.jobs_seen,
        "images_total": t.images_total,
        "images_completed": t.images_completed,
        "images_failed": t.images_failed,
        "credits_used": t.credits_used,
        "started": t.started,
        "progress_tenths": t.progress_tenths,
        "stalled": t.stalled,
        "started_at": t.started_at,
        "last_finished_at": t.last_finished_at,
        "finished_by_minute": t.finished_by_minute,
        "ended_at": t.ended_at,
    }


def import_changes(
    jobs: Sequence[JobRow],
    writes: Sequence[JobWrite],
    watching: Mapping[tuple[str, str], list[WatchRecord]],
) -> list[ImportChange]:
    """What each planned write changes in the imports of the job's watches."""
    out: list[ImportChange] = []
    for job, write in zip(jobs, writes, strict=True):
        in_imports = [w for w in watching.get((job.account, job.job_id), []) if w.import_id]
        if not in_imports:  # most jobs: nothing to roll up, so no item is looked at
            continue
        by_id = {w.id: w for w in in_imports}
        snapshot = write.job.snapshot if write.job is not None else job.snapshot
        # Only images failed since the last poll: earlier ones were recorded then (or on joining).
        before = {item.get("id") for item in _failed_items(job.snapshot)}
        failed = tuple(i for i in _failed_items(snapshot) if i.get("id") not in before)
        for change in write.watches:
            watch = by_id.get(change.id)
            if watch is None or watch.import_id is None or change.counted is None:
                continue
            old = Contribution.from_dict(watch.counted)
            new = Contribution.from_dict(change.counted)
            assert new is not None
            if old == new and not failed:
                continue
            out.append(ImportChange(watch.import_id, job.job_id, old, new, failed))
    return out


async def lock_imports(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, ImportRecord]:
    """The imports, locked in id order (the one order every writer takes them in)."""
    rows = await conn.execute(
        select(I).where(I.c.id.in_(sorted(set(ids)))).order_by(I.c.id).with_for_update()
    )
    return {r.id: import_record(r._mapping) for r in rows}


async def roll_up(
    conn: AsyncConnection,
    changes: Sequence[ImportChange],
    *,
    planner: ImportEventPlanner,
    now: datetime,
    read: Mapping[str, ImportRecord] | None = None,
) -> list[PlannedEvent]:
    """Fold the changes into their imports, record the import events they make, and the failures.

    `read`: the imports as this transaction already read them under its write lock (SQLite);
    any other import is read now, locked in id order (PostgreSQL).
    """
    if not changes:
        return []
    by_import: dict[str, list[ImportChange]] = defaultdict(list)
    for change in changes:
        by_import[change.import_id].append(change)
    known = read or {}
    records = {i: known[i] for i in by_import if i in known}
    if len(records) < len(by_import):
        records |= await lock_imports(conn, [i for i in by_import if i not in records])
    updated: list[ImportRecord] = []
    planned: list[PlannedEvent] = []
    failures: list[dict[str, Any]] = []
    for import_id, found in by_import.items():
        record = records.get(import_id)
        if record is None:  # pruned meanwhile: nothing left to tell
            continue
        tally = record.tally
        for change in found:
            tally = fold(tally, change.old, change.new, now=now)
            failures += failure_rows(change, now)
        tally, types = settle(tally, now=now, finished_before=record.tally.images_finished)
        after, made = planner.plan(record, tally, types, now=now)
        updated.append(after)
        planned += made
    await write_imports(conn, updated, now=now)
    await write_import_events(conn, planned, now=now)
    await insert_failures(conn, failures)
    return planned


def joining(import_id: str, job_id: str, snapshot: dict[str, Any] | None) -> ImportChange:
    """A job joining an import, counted as it was last polled (zero when it never was)."""
    known = JobSnapshot.from_dict(snapshot) if snapshot else None
    new = contribution("active", known) if known is not None else Contribution()
    return ImportChange(import_id, job_id, None, new, _failed_items(snapshot))


def _failed_items(snapshot: dict[str, Any] | None) -> tuple[dict[str, Any], ...]:
    items = (snapshot or {}).get("items") or ()
    return tuple(item for item in items if item.get("status") in _FAILED)


def failure_rows(change: ImportChange, now: datetime) -> list[dict[str, Any]]:
    """The `import_failures` rows of a change's failed images."""
    return [
        {
            "import_id": change.import_id,
            "job_id": change.job_id,
            "item_id": str(item.get("id") or ""),
            "external_id": item.get("external_id"),
            "error_code": item.get("error_code") or item.get("status"),
            "error_message": item.get("error_message"),
            "created_at": now,
        }
        for item in change.failed_items
    ]


async def insert_failures(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Record failed images; one already recorded for the import stays as it is."""
    if rows:
        stmt = insert_for(conn.dialect.name, import_failures).on_conflict_do_nothing(
            index_elements=["import_id", "job_id", "item_id"]
        )
        await conn.execute(stmt, list(rows))


async def write_imports(
    conn: AsyncConnection, records: Sequence[ImportRecord], *, now: datetime
) -> None:
    """Store each import's tally and sequence counter."""
    if not records:
        return
    params = [
        {
            "b_id": r.id,
            **tally_columns(r.tally),
            "last_sequence": r.last_sequence,
            "updated_at": now,
        }
        for r in records
    ]
    await conn.execute(update(I).where(I.c.id == bindparam("b_id")), params)


async def write_import_events(
    conn: AsyncConnection, planned: Sequence[PlannedEvent], *, now: datetime
) -> None:
    """Record import events and their deliveries; a channel keeps the one it already has."""
    if not planned:
        return
    await conn.execute(
        events.insert(),
        [
            {
                "id": e.id,
                "watch_id": e.import_id,  # an import's events are numbered per import
                "sequence": e.sequence,
                "type": e.type,
                "payload": e.payload,
                "created_at": e.created_at,
            }
            for e in planned
        ],
    )
    rows = [
        {
            "id": new_id("dlv"),
            "event_id": e.id,
            "watch_id": e.import_id,
            "sequence": e.sequence,
            "destination": send.destination,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "stream": send.stream,
            "position": send.position,
            "change_key": send.change_key,
            "created_at": now,
            "updated_at": now,
        }
        for e in planned
        for send in e.sends
    ]
    if rows:
        stmt = insert_for(conn.dialect.name, deliveries).on_conflict_do_nothing(
            index_elements=["destination", "change_key"]
        )
        await conn.execute(stmt, rows)


async def fold_cancelled_watch(
    conn: AsyncConnection, watch: WatchRecord, *, planner: ImportEventPlanner, now: datetime
) -> WatchRecord:
    """Fold a cancelled watch into its import (locked last: job, watch, import is the one order),
    so an import whose last active job is cancelled ends with its final event."""
    assert watch.import_id is not None
    record = (await lock_imports(conn, [watch.import_id])).get(watch.import_id)
    if record is None:  # pruned meanwhile: nothing left to tell
        return watch
    old = Contribution.from_dict(watch.counted) or Contribution()
    new = old.cancelled()
    tally = fold(record.tally, old, new, now=now)
    tally, types = settle(tally, now=now, finished_before=record.tally.images_finished)
    after, planned = planner.plan(record, tally, types, now=now)
    await write_imports(conn, [after], now=now)
    await write_import_events(conn, planned, now=now)
    await conn.execute(
        update(watches).where(watches.c.id == watch.id).values(counted=new.to_dict())
    )
    return replace(watch, counted=new.to_dict())
