"""Imports at scale: CPU per poll with and without imports, GET of a big import, the failures CSV.

Prints one JSON object:
- polling: N moving jobs (an image finishes every few seconds, so polls find changes), polled at
  the saturated rate on SQLite, once as plain watches and once as the same jobs in N/100 imports;
  each run on its own fresh simulator process and database. Reported: polls/s, CPU seconds per
  1,000 polls, and the ratio of the two (the target is at most 1.1);
- get_import: an import of 5,000 jobs served by the real app over HTTP: GET /v1/imports/{id}
  latency p50/p99 (target under 20 ms);
- failures_csv: 100,000 failures streamed as CSV: bytes, chunks, the largest chunk, and the peak
  Python memory allocated while streaming (tracemalloc), against the size of the whole file.

    python bench/imports.py --jobs 10000 --seconds 15
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.polling import config_text, cpu_seconds, simulator
from bridge.api.ratelimit import RateLimiter
from bridge.app import create_app
from bridge.clock import utcnow
from bridge.config import parse_config
from bridge.devtools.localserver import serving
from bridge.events.import_events import ImportEventPlanner
from bridge.events.routing import Router
from bridge.ops.metrics import Metrics
from bridge.polling.poller import Poller
from bridge.polling.pool import UpstreamPool
from bridge.store import Store, open_store
from bridge.store.tables import import_failures

PER_IMPORT = 100
TOKEN = "bench-token-1"


async def _register(
    store: Store, jobs: list[str], *, imports: bool, planner: ImportEventPlanner
) -> None:
    """Job i on account a{i // 100}: as plain watches, or in one import per account."""
    now = datetime.now(UTC)
    ttl = timedelta(hours=1)
    for n, start in enumerate(range(0, len(jobs), PER_IMPORT)):
        chunk = jobs[start : start + PER_IMPORT]
        if not imports:
            await asyncio.gather(*(
                store.watches.create(client="shop", account=f"a{n}", job_id=job_id,
                                     webhook_url=None, events=["*"], metadata={},
                                     idempotency_key=None, now=now, ttl=ttl)
                for job_id in chunk
            ))  # fmt: skip
            continue
        record, _ = await store.imports.create(
            client="shop", account=f"a{n}", name=f"catalog {n}", webhook_url=None, events=["*"],
            metadata={}, expected_jobs=len(chunk), idempotency_key=None, now=now,
        )  # fmt: skip
        await store.imports.add_jobs(
            import_id=record.id, client="shop", job_ids=chunk, metadata={}, now=now, ttl=ttl,
            planner=planner,
        )  # fmt: skip


async def poll_run(
    jobs: int, *, imports: bool, seconds: float, per_item: float
) -> dict[str, object]:
    """Register the jobs (as watches, or in imports), warm up, then poll saturated for `seconds`."""
    with simulator(jobs, per_item, PER_IMPORT) as (url, keys, job_ids):
        db = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
        # One account per 100 jobs (an import's), with a generous budget, in both runs.
        config = parse_config(config_text(url, db, keys, "aiohttp", 0.01), env={})
        store = await open_store(db)
        router = Router.from_config(config)
        planner = ImportEventPlanner(router)
        await _register(store, job_ids, imports=imports, planner=planner)
        clients = UpstreamPool(config)
        poller = Poller(
            store=store, upstream=clients, accounts=config.upstream.accounts,
            polling=config.polling, router=router, timeout_s=10, metrics=Metrics(), now=utcnow,
            owner="bench", rng=Random(1), batch=500,
        )  # fmt: skip
        await poller.start()
        warm = 0
        while warm < len(job_ids):
            warm += await poller.poll_due()
        cpu0, t0, polls = cpu_seconds(), time.monotonic(), 0
        while time.monotonic() - t0 < seconds:
            done = await poller.poll_due()
            polls += done
            if done == 0:
                await asyncio.sleep(0.01)
        elapsed, cpu = time.monotonic() - t0, cpu_seconds() - cpu0
        import_events = await _count_import_events(store)
        await clients.aclose()
        await store.close()
    return {
        "imports": imports,
        "polls": polls,
        "polls_per_s": round(polls / elapsed, 1),
        "cpu_s_per_1000_polls": round(cpu / max(polls, 1) * 1000, 3),
        "import_events": import_events,
    }


async def _count_import_events(store: Store) -> int:
    from sqlalchemy import func, select

    from bridge.store.tables import events

    async with store.db.engine.connect() as conn:
        query = select(func.count()).select_from(events).where(events.c.watch_id.like("imp_%"))
        return int(await conn.scalar(query) or 0)


APP_CONFIG = """
storage: {{url: "{db}"}}
upstream: {{base_url: "http://127.0.0.1:9", accounts: {{main: {{api_key: aigen_test_x}}}}}}
clients: {{shop: {{token: {token}, accounts: [main]}}}}
"""


async def big_import(jobs: int, failures: int) -> dict[str, object]:
    """GET latency of an import of `jobs` jobs, and its failures CSV streamed."""
    db = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    config = parse_config(APP_CONFIG.format(db=db, token=TOKEN), env={})
    store = await open_store(db)
    planner = ImportEventPlanner(Router.from_config(config))
    now = datetime.now(UTC)
    record, _ = await store.imports.create(
        client="shop", account="main", name="big", webhook_url=None, events=["*"], metadata={},
        expected_jobs=None, idempotency_key=None, now=now,
    )  # fmt: skip
    ids = [str(uuid.UUID(int=n + 1)) for n in range(jobs)]
    for start in range(0, jobs, 100):
        await store.imports.add_jobs(
            import_id=record.id, client="shop", job_ids=ids[start : start + 100], metadata={},
            now=now, ttl=timedelta(hours=48), planner=planner,
        )  # fmt: skip
    async with store.db.engine.begin() as conn:
        await conn.execute(
            import_failures.insert(),
            [
                {"import_id": record.id, "job_id": ids[n % jobs], "item_id": f"itm_{n:08d}",
                 "external_id": f"sku-{n:08d}", "error_code": "background_removal_failed",
                 "error_message": "The subject could not be separated from the background.",
                 "created_at": now}
                for n in range(failures)
            ],
        )  # fmt: skip
    await store.close()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        # The API's per-client rate limit (20/s) would measure itself, not the handler.
        serving(
            create_app(config, rate_limiter=RateLimiter(rate_per_s=1e6, burst=10**6))
        ) as bridge,
        httpx.AsyncClient(base_url=bridge.url, headers=headers, timeout=30) as api,
    ):
        for _ in range(20):  # warm-up
            (await api.get(f"/v1/imports/{record.id}")).raise_for_status()
        times = []
        for _ in range(300):
            t0 = time.perf_counter()
            response = await api.get(f"/v1/imports/{record.id}")
            times.append((time.perf_counter() - t0) * 1000)
            response.raise_for_status()
        times.sort()
        csv = await _stream_csv(api, record.id)
    return {
        "jobs": jobs,
        "get_ms_p50": round(statistics.median(times), 2),
        "get_ms_p99": round(times[int(len(times) * 0.99)], 2),
        "failures_csv": csv | {"failures": failures},
    }


async def _stream_csv(api: httpx.AsyncClient, import_id: str) -> dict[str, object]:
    """Stream the CSV; the server runs in this process, so tracemalloc sees its allocations too."""
    tracemalloc.start()
    size, chunks, largest, lines = 0, 0, 0, 0
    t0 = time.perf_counter()
    async with api.stream("GET", f"/v1/imports/{import_id}/failures?format=csv") as response:
        response.raise_for_status()
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            chunks += 1
            largest = max(largest, len(chunk))
            lines += chunk.count(b"\n")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "bytes": size,
        "lines": lines,
        "chunks": chunks,
        "largest_chunk_bytes": largest,
        "peak_traced_mib": round(peak / 2**20, 2),
        "peak_over_file_size": round(peak / max(size, 1), 3),
        "seconds": round(time.perf_counter() - t0, 2),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--seconds-per-item", type=float, default=3.0)
    parser.add_argument("--import-jobs", type=int, default=5_000)
    parser.add_argument("--failures", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    report: dict[str, object] = {"cpus": os.cpu_count(), "seconds": args.seconds}
    # Plain and imports runs alternate, each on a fresh simulator and database; the machines are
    # shared and noisy, so the ratio reported is the median of the rounds' ratios.
    runs, ratios = [], []
    for _ in range(args.rounds):
        pair = []
        for imports in (False, True):
            pair.append(
                await poll_run(
                    args.jobs, imports=imports, seconds=args.seconds, per_item=args.seconds_per_item
                )
            )
            print(json.dumps(pair[-1]), file=sys.stderr)
        plain, grouped = pair
        runs += pair
        ratios.append(
            round(float(grouped["cpu_s_per_1000_polls"]) / float(plain["cpu_s_per_1000_polls"]), 3)
        )
    report["polling"] = {
        "jobs": args.jobs,
        "imports": args.jobs // PER_IMPORT,
        "runs": runs,
        "cpu_per_poll_ratios_imports_to_plain": ratios,
        "cpu_per_poll_ratio_median": statistics.median(ratios),
    }
    report["get_import"] = await big_import(args.import_jobs, args.failures)
    report["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
