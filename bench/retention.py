"""Retention on SQLite: how large the file is with N finished watches, after pruning, after VACUUM.

Prints one JSON object. Each finished watch looks like a 20-image job's: a job row with its
snapshot, 31 events, one delivered webhook delivery per event and one attempt per delivery. Then
the retention step's batches delete them all (each batch's duration is reported: a batch holds
SQLite's one writer), and the file is measured again, then once more after VACUUM.

    python bench/retention.py --watches 10000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge.rendering.samples import sample_event, sample_job
from bridge.runtime import RETENTION_BATCH
from bridge.store import Store, open_store
from bridge.store.tables import deliveries, delivery_attempts, events, upstream_jobs, watches

T0 = datetime(2026, 1, 1, tzinfo=UTC)
EVENT_TYPES = [
    "job.queued",
    "job.processing",
    *[f"item.{s}" for s in ["processing", "completed"] * 13 + ["processing", "failed"]],
    "job.partially_completed",
]
assert len(EVENT_TYPES) == 31
CHUNK = 100  # watches per insert transaction


def _rows(n: int) -> dict[str, list[dict[str, Any]]]:
    """One finished watch with its job row, events, deliveries and attempts."""
    wid, job_id = f"wat_{n:032x}", f"00000000-0000-4000-8000-{n:012x}"
    out: dict[str, list[dict[str, Any]]] = {"e": [], "d": [], "a": []}
    out["w"] = [
        {"id": wid, "client": "shop", "account": "main", "job_id": job_id, "status": "completed",
         "webhook_url": "https://shop.example.com/hooks/photos", "events": ["*"],
         "metadata": {"order": f"A-{n}"}, "last_sequence": 31, "first_polled_at": T0,
         "created_at": T0, "updated_at": T0, "expires_at": T0 + timedelta(hours=48),
         "ended_at": T0}
    ]  # fmt: skip
    out["j"] = [
        {"account": "main", "job_id": job_id, "snapshot": sample_job(),
         "status": "partially_completed", "final": True, "interval_s": 15.0, "priority": 0,
         "not_found_count": 0, "error_count": 0, "created_at": T0, "updated_at": T0}
    ]  # fmt: skip
    for seq, kind in enumerate(EVENT_TYPES, start=1):
        eid, did = f"evt_{n:024x}{seq:08x}", f"dlv_{n:024x}{seq:08x}"
        payload = sample_event(kind)
        payload["data"].update(event_id=eid, watch_id=wid, job_id=job_id, sequence=seq)
        out["e"].append(
            {"id": eid, "watch_id": wid, "sequence": seq, "type": kind, "payload": payload,
             "created_at": T0}
        )  # fmt: skip
        out["d"].append(
            {"id": did, "event_id": eid, "watch_id": wid, "sequence": seq,
             "destination": "webhook", "status": "delivered", "attempts": 1,
             "last_status_code": 200, "created_at": T0, "updated_at": T0, "delivered_at": T0}
        )  # fmt: skip
        out["a"].append(
            {"delivery_id": did, "attempted_at": T0, "status_code": 200, "duration_ms": 41.5,
             "response_excerpt": '{"ok":true}'}
        )  # fmt: skip
    return out


async def fill(store: Store, count: int) -> float:
    """Insert `count` finished watches; returns the seconds it took."""
    started = time.perf_counter()
    tables = {
        "w": watches,
        "j": upstream_jobs,
        "e": events,
        "d": deliveries,
        "a": delivery_attempts,
    }
    for first in range(0, count, CHUNK):
        batch: dict[str, list[dict[str, Any]]] = {k: [] for k in tables}
        for n in range(first, min(first + CHUNK, count)):
            for key, rows in _rows(n).items():
                batch[key] += rows
        async with store.db.engine.begin() as conn:
            for key, table in tables.items():
                await conn.execute(table.insert(), batch[key])
    return time.perf_counter() - started


def measure(path: Path) -> dict[str, Any]:
    """The file's size (WAL checkpointed into it) and its free pages."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return {
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "pages": pages,
        "free_pages": free,
        "free_mb": round(free * page_size / 1e6, 1),
    }


async def prune_all(store: Store) -> dict[str, Any]:
    """Run the retention step's batches until nothing is left; their sizes and durations."""
    later = T0 + timedelta(days=31)
    durations, pruned = [], 0
    while True:
        started = time.perf_counter()
        n = await store.retention.prune(ended_before=later, now=later, limit=RETENTION_BATCH)
        if n == 0:
            break
        durations.append(time.perf_counter() - started)
        pruned += n
    return {
        "watches_pruned": pruned,
        "batches": len(durations),
        "batch_size": RETENTION_BATCH,
        "batch_ms_p50": round(statistics.median(durations) * 1000, 1),
        "batch_ms_max": round(max(durations) * 1000, 1),
        "total_s": round(sum(durations), 1),
    }


async def main(count: int) -> dict[str, Any]:
    path = Path(tempfile.mkdtemp()) / "bridge.db"
    store = await open_store(f"sqlite:///{path}")
    try:
        fill_s = await fill(store, count)
        full = measure(path)
        pruning = await prune_all(store)
    finally:
        await store.close()
    pruned = measure(path)
    started = time.perf_counter()
    with sqlite3.connect(path) as conn:
        conn.execute("VACUUM")
    vacuum_s = time.perf_counter() - started
    return {
        "watches": count,
        "events_per_watch": len(EVENT_TYPES),
        "deliveries_per_event": 1,
        "attempts_per_delivery": 1,
        "fill_s": round(fill_s, 1),
        "full": full,
        "pruning": pruning,
        "after_pruning": pruned,
        "after_vacuum": {**measure(path), "vacuum_s": round(vacuum_s, 2)},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watches", type=int, default=10_000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.watches)), indent=2))
