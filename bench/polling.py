"""Polling throughput: the bridge's poller against the simulator, beside the raw HTTP rate.

Prints one JSON object. For each storage backend (SQLite, PostgreSQL) and each transport (aiohttp under
httpx by default, or httpx's own), N watched jobs each on its own account (generous budgets) are
polled for a fixed time, twice:

- saturated: every job always due, the engine's ceiling: polls/s, its ratio to the raw request rate
  measured against the same simulator in the same run, and CPU per poll (this process: the event
  loop and SQLite's thread; the simulator and PostgreSQL run in their own processes);
- half load: each job due once per interval, the due times spread evenly over it after the warm-up
  (jobs due at a steady rate, half the saturated rate): the lag from a job's due time to its
  claim, p50 and p99.

Raw rates: `raw_requests_per_s` are plain GETs of one job through httpx with each transport (what
`ratio_to_raw` divides by, as in issue 13), `raw_aiohttp_session_per_s` through an aiohttp session
alone. `summary` has one line per backend with the issue's figures; peak RSS is this process's peak
so far, so a later backend's includes the earlier's.

    python bench/polling.py --jobs 10000 --seconds 15
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random
from typing import cast

import aiohttp
import httpx
from sqlalchemy import bindparam, update

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.simserver import wait_ready
from bridge.clock import utcnow
from bridge.config import parse_config
from bridge.events.routing import Router
from bridge.ops.heap import settle_heap
from bridge.ops.metrics import Metrics
from bridge.polling.poller import Poller
from bridge.polling.pool import UpstreamPool
from bridge.polling.upstream import make_transport
from bridge.store import Store, open_store
from bridge.store.tables import upstream_jobs


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def simulator(
    jobs: int, seconds_per_item: float | None = None, jobs_per_key: int = 1
) -> Iterator[tuple[str, list[str], list[str]]]:
    """Run bench/simserver.py in its own process; yields (url, keys, job ids)."""
    out = Path(tempfile.mkdtemp()) / "jobs.json"
    extra = [str(seconds_per_item or 10**6), str(jobs_per_key)]
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "simserver.py"), str(jobs), str(out), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = wait_ready(out, proc)
        data = json.loads(out.read_text())
        yield url, data["keys"], data["jobs"]
    finally:
        proc.terminate()
        proc.wait(10)


async def raw_rate(url: str, key: str, job_id: str, *, kind: str, seconds: float) -> float:
    """Requests/s of plain httpx GETs of one job at concurrency 50: the ceiling for polling."""
    transport = make_transport(kind)
    headers = {"Authorization": f"Bearer {key}"}
    done = 0
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=url, transport=transport, headers=headers) as client:

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                response = await client.get(f"/product-photo-jobs/{job_id}")
                response.read()
                done += 1

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(50)))
        return done / (time.monotonic() - started)


async def raw_session_rate(url: str, key: str, job_id: str, *, seconds: float) -> float:
    """Requests/s of GETs of one job through an aiohttp session alone, at concurrency 50."""
    headers = {"Authorization": f"Bearer {key}"}
    done = 0
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession(base_url=url, headers=headers) as session:

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                async with session.get(f"/product-photo-jobs/{job_id}") as response:
                    await response.read()
                done += 1

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(50)))
        return done / (time.monotonic() - started)


@contextlib.asynccontextmanager
async def storage(kind: str) -> AsyncIterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tempfile.mkdtemp()}/bench.db"
        return
    from tests.pgcluster import running_cluster

    with running_cluster() as server:
        yield server.create_database()


def config_text(url: str, db: str, keys: list[str], transport: str, interval_s: float) -> str:
    accounts = "\n".join(
        f"    a{i}: {{api_key: {key}, polls_per_hour: 100000, max_concurrency: 2}}"
        for i, key in enumerate(keys)
    )
    return f"""
storage: {{url: "{db}"}}
upstream:
  base_url: "{url}"
  timeout_s: 10
  transport: {transport}
  accounts:
{accounts}
polling: {{queued_interval_s: {interval_s}, processing_interval_s: {interval_s}, max_interval_s: {interval_s}, watch_ttl_h: 48}}
clients:
  shop: {{token: bench-token-1, accounts: [a0]}}
"""


async def watch_all(store: Store, jobs: list[str]) -> None:
    """One watch per job, each job on its own account."""
    now = datetime.now(UTC)
    for start in range(0, len(jobs), 50):
        await asyncio.gather(*(
            store.watches.create(client="shop", account=f"a{i}", job_id=jobs[i], webhook_url=None,
                               events=["*"], metadata={}, idempotency_key=None, now=now,
                               ttl=timedelta(hours=1))
            for i in range(start, min(start + 50, len(jobs)))
        ))  # fmt: skip


async def spread(store: Store, jobs: list[str], *, interval_s: float) -> None:
    """Make the jobs come due evenly over the next interval (a steady rate, not the warm-up's burst)."""
    now = datetime.now(UTC)
    step = interval_s / max(len(jobs), 1)
    rows = [
        {"b_account": f"a{i}", "b_job_id": job, "due": now + timedelta(seconds=i * step)}
        for i, job in enumerate(jobs)
    ]
    J = upstream_jobs
    stmt = (
        update(J)
        .where(J.c.account == bindparam("b_account"), J.c.job_id == bindparam("b_job_id"))
        .values(next_poll_at=bindparam("due"))
    )
    async with store.jobs.engine.begin() as conn:
        await conn.execute(stmt, rows)


async def run_poller(
    url: str,
    store: Store,
    db: str,
    keys: list[str],
    jobs: list[str],
    *,
    transport: str,
    seconds: float,
    interval_s: float,
    steady: bool,
) -> dict[str, object]:
    """Poll every job once (warm-up), then measure polling for `seconds`; with `steady`, the jobs'
    next polls are first spread evenly over one interval."""
    config = parse_config(config_text(url, db, keys, transport, interval_s), env={})
    clients = UpstreamPool(config)
    poller = Poller(
        store=store,
        upstream=clients,
        accounts=config.upstream.accounts,
        polling=config.polling,
        router=Router.from_config(config),
        timeout_s=config.upstream.timeout_s,
        metrics=Metrics(),
        now=utcnow,
        owner="bench",
        rng=Random(1),
        batch=500,
    )
    await poller.start()
    warm = 0
    while warm < len(jobs):  # every job's first poll, which records its first events
        warm += await poller.poll_due()
    if steady:
        await spread(store, jobs, interval_s=interval_s)
    lags: list[float] = []
    claim = store.jobs.claim_due

    async def recording_claim(**kwargs):  # type: ignore[no-untyped-def]
        claims = await claim(**kwargs)
        lags.extend((kwargs["now"] - c.due_at).total_seconds() for c in claims)
        return claims

    store.jobs.claim_due = recording_claim  # type: ignore[method-assign]
    cpu0, t0, polls = cpu_seconds(), time.monotonic(), 0
    while time.monotonic() - t0 < seconds:
        done = await poller.poll_due()
        polls += done
        if done == 0:
            await asyncio.sleep(0.01)
    elapsed, cpu = time.monotonic() - t0, cpu_seconds() - cpu0
    store.jobs.claim_due = claim  # type: ignore[method-assign]
    await clients.aclose()
    lags.sort()
    return {
        "interval_s": interval_s,
        "seconds": round(elapsed, 1),
        "polls": polls,
        "polls_per_s": round(polls / elapsed, 1),
        "lag_p50_s": round(statistics.median(lags), 3) if lags else None,
        "lag_p99_s": round(lags[int(len(lags) * 0.99)], 3) if lags else None,
        "cpu_ms_per_poll": round(cpu / max(polls, 1) * 1000, 3),
    }


async def measure(
    url: str,
    keys: list[str],
    jobs: list[str],
    backend: str,
    transport: str,
    seconds: float,
    baselines: dict[str, float],
) -> list[dict[str, object]]:
    """Two runs on one database: saturated (every job always due: the engine's ceiling), then half
    that rate (jobs due at a steady rate: the lag is the scheduler's own, not a queue)."""
    async with storage(backend) as db:
        store = await open_store(db)
        try:
            await watch_all(store, jobs)
            full = await run_poller(
                url, store, db, keys, jobs, transport=transport, seconds=seconds, interval_s=0.01,
                steady=False,
            )  # fmt: skip
            rate = cast(float, full["polls_per_s"]) or 1.0
            full |= {
                "load": "saturated",
                "ratio_to_raw": round(rate / baselines[transport], 3),
                "ratio_to_raw_aiohttp_session": round(rate / baselines["aiohttp_session"], 3),
            }
            interval = round(len(jobs) / max(rate / 2, 1), 2)
            # Measured over a whole interval, so every job comes due inside the window.
            half = await run_poller(
                url, store, db, keys, jobs, transport=transport,
                seconds=max(seconds, interval * 1.1), interval_s=interval, steady=True,
            )  # fmt: skip
        finally:
            await store.close()
    half["load"] = "half"
    return [run | {"backend": backend, "transport": transport} for run in (full, half)]


def peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def summary(runs: list[dict[str, object]], backend: str, transport: str) -> dict[str, object]:
    """The issue's figures for one backend and transport."""
    full, half = (r for r in runs if r["backend"] == backend and r["transport"] == transport)
    return {
        "backend": backend,
        "transport": transport,
        "polls_per_s": full["polls_per_s"],
        "ratio_to_raw": full["ratio_to_raw"],
        "cpu_ms_per_poll": full["cpu_ms_per_poll"],
        "half_load_lag_p50_s": half["lag_p50_s"],
        "half_load_lag_p99_s": half["lag_p99_s"],
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=15, help="each measured run, at least")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--transports", default="aiohttp", help="aiohttp, httpx or both")
    args = parser.parse_args()
    settle_heap()  # as `serve` tunes the collector once everything is imported
    transports = args.transports.split(",")
    report: dict[str, object] = {"jobs": args.jobs, "seconds": args.seconds, "cpus": os.cpu_count()}
    with simulator(args.jobs) as (url, keys, jobs):
        baselines = {
            kind: round(await raw_rate(url, keys[0], jobs[0], kind=kind, seconds=5), 1)
            for kind in transports
        }
        session = await raw_session_rate(url, keys[0], jobs[0], seconds=5)
        baselines["aiohttp_session"] = round(session, 1)
        report["raw_requests_per_s"] = {k: v for k, v in baselines.items() if k in transports}
        report["raw_aiohttp_session_per_s"] = baselines["aiohttp_session"]
        runs: list[dict[str, object]] = []
        lines = []
        for backend in args.backends.split(","):
            for transport in transports:
                runs += await measure(url, keys, jobs, backend, transport, args.seconds, baselines)
                line = summary(runs, backend, transport)
                lines.append(line | {"peak_rss_mib": peak_rss_mib()})
        report["summary"] = lines
        report["runs"] = runs
    report["peak_rss_mib"] = peak_rss_mib()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
