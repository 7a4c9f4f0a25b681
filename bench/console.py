"""The operators' console at scale: each page's latency over a small store and a large one.

The requirement: the console's lists page with cursors, so a page with 100,000 watches behind it
renders as fast as one with ten. For each backend (a SQLite file; PostgreSQL when tests.pgcluster
finds its binaries in /usr/lib/postgresql/*/bin, else reported as skipped) two stores are seeded
straight into the tables with batched executemany inserts:

- small: `--small` watches (default 60), large: `--watches` watches (default 100,000);
- per watch: its upstream job row, 2 events, and a delivery of each event to the watch's own
  webhook and to the two configured channels (6 deliveries: mostly delivered, 4% dead -- in a
  small store more, so that its filtered pages are full pages too -- and the active watches'
  latest ones pending), one attempt row per delivery that was tried;
- the newest watches are active (5%, at least 12); half of the watches are jobs of imports
  (`watches / 5000` imports, at least 3; the newest two running), with a few failures each;
- poll_log rows in the last hour for both accounts.

Then both stores are served at once by the real app (create_app, background off) on 127.0.0.1, an
operator signs in through /console/login, and every page is fetched `--requests` times (after
`--warmups`), small and large taking turns request by request; GET /healthz on the same servers is
the baseline (the HTTP client and server share this process's loop, so that floor is in every
figure). PostgreSQL's tables are VACUUM ANALYZEd after seeding, as autovacuum would have them.

Prints one JSON object: per backend, p50/p95 ms of each page for small and large, the ratio of the
p50s (large / small), the baseline's p50, and the rows seeded and the seconds seeding took.

    python bench/console.py [--watches 100000] [--small 60] [--requests 30]
                            [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any

import httpx
from sqlalchemy import Table, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge.app import create_app
from bridge.config import Config, parse_config
from bridge.devtools.localserver import serving
from bridge.events.rollup import Tally
from bridge.events.routing import WEBHOOK_URL
from bridge.rendering.samples import sample_job
from bridge.store import Store, open_store
from bridge.store.import_writes import tally_columns
from bridge.store.tables import (
    deliveries,
    delivery_attempts,
    events,
    import_failures,
    imports,
    poll_log,
    upstream_jobs,
    watches,
)

OPS_TOKEN = "bench-ops-token-0001"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
CONFIG = """
storage: {{url: "{url}"}}
upstream:
  accounts:
    main: {{api_key: aigen_test_main}}
    second: {{api_key: aigen_test_second}}
clients:
  shop: {{token: bench-client-token, accounts: [main, second]}}
operators:
  ops: {{token: {ops}}}
channels:
  ops-hook: {{type: webhook, url: "https://hooks.example.com/ops", secret: "{whsec}"}}
  catalog-slack: {{type: slack, token: xoxb-bench, channel: C0123456}}
"""
ACCOUNTS = ("main", "second")
CHANNELS = ("ops-hook", "catalog-slack")
DESTINATIONS = (WEBHOOK_URL, *CHANNELS)
EVENTS_PER_WATCH = 2
JOBS_PER_IMPORT = 5000
SPAN = timedelta(days=20)  # the watches were created over this long, up to now
CHUNK = 2000  # watches per insert transaction
ENDED = (("completed", 80), ("failed", 8), ("cancelled", 6), ("expired", 6))
PAGES = (
    "/console/",
    "/console/imports",
    "/console/imports/{id}",
    "/console/watches/{id}",
    "/console/deliveries",
    "/console/deliveries?status=dead",
    "/console/deliveries?status=dead&channel={channel}",
    "/console/deliveries?cursor={cursor}",
    "/console/channels",
)
BASELINE = "/healthz"
_OLDER = re.compile(r'href="/console/deliveries\?([^"]*cursor=[^"]*)"')


def make_id(prefix: str, at: datetime, serial: int) -> str:
    """An id as bridge.ids.new_id makes them (12 hex of ms time first), unique by `serial`."""
    return f"{prefix}_{int(at.timestamp() * 1000):012x}{serial:020x}"


def small_snapshot(job_id: str, status: str) -> dict[str, Any]:
    done = status in ("completed", "partially_completed")
    item = {
        "id": f"{job_id}-1",
        "external_id": "sku-1",
        "status": "completed" if done else "processing",
        "result_url": "https://cdn.example.com/results/sku-1.png" if done else None,
        "thumbnail_url": "https://cdn.example.com/thumbs/sku-1.jpg" if done else None,
        "error_code": None,
        "error_message": None,
        "credits_used": 1 if done else 0,
    }
    return {
        "id": job_id,
        "status": status,
        "total_items": 1,
        "completed_items": 1 if done else 0,
        "failed_items": 0,
        "credits_used": 1 if done else 0,
        "items": [item],
    }


class Seeder:
    """Rows of a store with `count` watches, written in batches; remembers what the pages open."""

    def __init__(self, count: int, now: datetime) -> None:
        self.count = count
        self.now = now
        self.rng = Random(count)
        self.active_from = count - max(12, count * 5 // 100)  # the newest watches are active
        self.imported = count // 2  # every other watch is a job of an import
        self.import_count = max(3, count // JOBS_PER_IMPORT)
        self.import_ids = [
            make_id("imp", self.created(n * count // self.import_count), 1 + n)
            for n in range(self.import_count)
        ]
        # The job page opened: a completed watch in the middle, its job's snapshot the sample's.
        self.watch_n = next(n for n in range(count // 2, count) if self.status(n) == "completed")
        self.rows: dict[str, int] = {}
        # 4% dead, but enough in a small store that its filtered pages are full pages too.
        self.dead_share = max(0.04, min(0.6, 80 / (count * EVENTS_PER_WATCH)))

    def created(self, n: int) -> datetime:
        return self.now - SPAN * (self.count - n) / self.count

    def status(self, n: int) -> str:
        if n >= self.active_from:
            return "active"
        pick = (n * 7919) % 100
        for status, share in ENDED:
            if pick < share:
                return status
            pick -= share
        return "completed"

    def import_of(self, n: int) -> int | None:
        if n % 2:
            return None
        return min(self.import_count - 1, n * self.import_count // self.count)

    def watch_rows(self, n: int) -> dict[str, list[dict[str, Any]]]:
        """One watch with its job, events, deliveries and attempts."""
        at = self.created(n)
        status = self.status(n)
        account = ACCOUNTS[n % len(ACCOUNTS)]
        wid, job_id = make_id("wat", at, n), f"00000000-0000-4000-8000-{n:012x}"
        imp = self.import_of(n)
        ended = None if status == "active" else at + timedelta(minutes=10)
        out: dict[str, list[dict[str, Any]]] = {"events": [], "deliveries": [], "attempts": []}
        out["watches"] = [
            {"id": wid, "client": "shop", "account": account, "job_id": job_id, "status": status,
             "webhook_url": "https://shop.example.com/hooks/photos", "events": ["*"],
             "metadata": {"order": f"A-{n}"}, "last_sequence": EVENTS_PER_WATCH,
             "first_polled_at": at, "error_code": "job_not_found" if status == "failed" else None,
             "error_message": "The upstream job was not found." if status == "failed" else None,
             "created_at": at, "updated_at": ended or at, "expires_at": at + timedelta(hours=48),
             "ended_at": ended, "import_id": None if imp is None else self.import_ids[imp],
             "counted": None}
        ]  # fmt: skip
        job_status = {"active": "processing", "failed": None}.get(status, "completed")
        snapshot = (
            (sample_job(status="completed") | {"id": job_id})
            if n == self.watch_n
            else small_snapshot(job_id, job_status or "queued")
        )
        out["jobs"] = [
            {"account": account, "job_id": job_id,
             "snapshot": None if job_status is None else snapshot, "status": job_status,
             "final": status != "active",
             "next_poll_at": at + timedelta(seconds=15) if status == "active" else None,
             "interval_s": 15.0, "priority": 0, "last_polled_at": ended or self.now,
             "last_changed_at": ended or at, "not_found_count": 0, "error_count": 0,
             "failure_count": 0, "created_at": at, "updated_at": ended or at}
        ]  # fmt: skip
        for seq in range(1, EVENTS_PER_WATCH + 1):
            made = at + timedelta(minutes=5 * seq)
            kind = "job.processing" if seq == 1 else f"job.{job_status or 'processing'}"
            if status == "failed" and seq == EVENTS_PER_WATCH:
                kind = "watch.failed"
            eid = make_id("evt", made, n * 8 + seq)
            out["events"].append(
                {"id": eid, "watch_id": wid, "sequence": seq, "type": kind,
                 "payload": {"type": kind, "timestamp": made.isoformat(),
                             "data": {"event_id": eid, "watch_id": wid, "job_id": job_id,
                                      "account": account, "sequence": seq,
                                      "metadata": {"order": f"A-{n}"}}},
                 "created_at": made}
            )  # fmt: skip
            for d, destination in enumerate(DESTINATIONS):
                out["deliveries"].append(
                    self._delivery(n, seq, d, destination, eid, wid, account, job_id, made)
                )
                row = out["deliveries"][-1]
                if row["attempts"]:
                    out["attempts"].append(
                        {"delivery_id": row["id"], "attempted_at": row["updated_at"],
                         "status_code": row["last_status_code"],
                         "error": row["last_error"], "duration_ms": 41.5,
                         "response_excerpt": '{"ok":true}' if row["status"] == "delivered"
                         else "upstream error"}
                    )  # fmt: skip
        return out

    def _delivery(
        self,
        n: int,
        seq: int,
        d: int,
        destination: str,
        eid: str,
        wid: str,
        account: str,
        job_id: str,
        made: datetime,
    ) -> dict[str, Any]:
        if self.status(n) == "active" and seq == EVENTS_PER_WATCH:
            status = "pending"
        elif self.rng.random() < self.dead_share and n != self.watch_n:
            status = "dead"
        else:
            status = "delivered"
        own = destination == WEBHOOK_URL
        tried = status != "pending" or n % 3 == 0  # a third of the pending ones are retrying
        failed = status == "dead" or (status == "pending" and tried)
        return {
            "id": make_id("dlv", made, (n * 8 + seq) * 4 + d),
            "event_id": eid,
            "watch_id": wid,
            "sequence": seq,
            "destination": destination,
            "status": status,
            "attempts": 1 if tried else 0,
            "next_attempt_at": made + timedelta(seconds=30) if status == "pending" else None,
            "last_status_code": (500 if failed else 200) if tried else None,
            "last_error": "HTTP 500" if failed else None,
            "created_at": made,
            "updated_at": made + timedelta(seconds=2) if tried else made,
            "delivered_at": made + timedelta(seconds=2) if status == "delivered" else None,
            "stream": f"watch:{wid}" if own else f"job:{account}/{job_id}",
            "position": seq,
            "change_key": None if own else f"{job_id}:{seq}",
        }

    def import_rows(self) -> list[dict[str, Any]]:
        """The imports, their tallies as the roll-up would have left them (roughly)."""
        per = [0] * self.import_count
        active = [0] * self.import_count
        for n in range(0, self.count, 2):
            imp = self.import_of(n)
            assert imp is not None
            per[imp] += 1
            active[imp] += self.status(n) == "active"
        rows = []
        for i, import_id in enumerate(self.import_ids):
            at = self.created(i * self.count // self.import_count)
            running = i >= self.import_count - 2
            done = per[i] - active[i]
            tally = Tally(
                status="running" if running else "completed",
                closed=True,
                expected_jobs=per[i],
                jobs={"total": per[i], "active": active[i], "completed": done,
                      "partially_completed": 0, "failed": 0, "cancelled": 0},
                jobs_seen=per[i], images_total=per[i], images_completed=done,
                credits_used=done, started=True,
                progress_tenths=1000 * done // max(per[i], 1), started_at=at,
                last_finished_at=self.now - timedelta(minutes=1) if running else at,
                ended_at=None if running else at + timedelta(hours=1),
            )  # fmt: skip
            rows.append(
                {"id": import_id, "client": "shop", "account": "main", "name": f"catalog {i}",
                 "webhook_url": None, "events": ["*"], "metadata": {}, "idempotency_key": None,
                 "last_sequence": 0, **tally_columns(tally), "created_at": at,
                 "updated_at": self.now}
            )  # fmt: skip
        return rows

    def failure_rows(self) -> list[dict[str, Any]]:
        """A failed image for every 50th job of an import."""
        return [
            {"import_id": self.import_ids[imp], "job_id": f"00000000-0000-4000-8000-{n:012x}",
             "item_id": f"itm_{n:08d}", "external_id": f"sku-{n:08d}",
             "error_code": "background_removal_failed",
             "error_message": "The subject could not be separated from the background.",
             "created_at": self.created(n)}
            for n in range(0, self.count, 100)
            if (imp := self.import_of(n)) is not None
        ]  # fmt: skip

    def poll_rows(self) -> list[dict[str, Any]]:
        """Polls in the last hour: what the overview's budgets count."""
        per_account = min(3000, max(30, self.count // 30))
        return [
            {"account": account, "at": self.now - timedelta(seconds=3500 * k / per_account),
             "client": "shop"}
            for account in ACCOUNTS
            for k in range(per_account)
        ]  # fmt: skip

    async def write(self, store: Store) -> None:
        tables: dict[str, Table] = {
            "watches": watches,
            "jobs": upstream_jobs,
            "events": events,
            "deliveries": deliveries,
            "attempts": delivery_attempts,
        }
        engine = store.db.engine
        for first in range(0, self.count, CHUNK):
            batch: dict[str, list[dict[str, Any]]] = {k: [] for k in tables}
            for n in range(first, min(first + CHUNK, self.count)):
                for key, rows in self.watch_rows(n).items():
                    batch[key] += rows
            async with engine.begin() as conn:
                for key, table in tables.items():
                    await conn.execute(table.insert(), batch[key])
            for key, rows in batch.items():
                self.rows[key] = self.rows.get(key, 0) + len(rows)
        extra = {
            "imports": (imports, self.import_rows()),
            "import_failures": (import_failures, self.failure_rows()),
            "poll_log": (poll_log, self.poll_rows()),
        }
        async with engine.begin() as conn:
            for key, (table, rows) in extra.items():
                await conn.execute(table.insert(), rows)
                self.rows[key] = len(rows)

    def targets(self) -> dict[str, str]:
        """What the page templates' placeholders stand for in this store."""
        n = self.watch_n
        return {
            "/console/imports/{id}": self.import_ids[-1],  # the newest: a running import
            "/console/watches/{id}": make_id("wat", self.created(n), n),
        }


@contextlib.asynccontextmanager
async def databases(kind: str) -> AsyncIterator[Callable[[], str]]:
    """Yields a maker of fresh empty databases' storage URLs on `kind`."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            made = iter(range(1_000))
            yield lambda: f"sqlite:///{folder}/bench{next(made)}.db"
        return
    from tests.pgcluster import running_cluster

    with running_cluster() as server:
        yield server.create_database


def config_for(url: str) -> Config:
    return parse_config(CONFIG.format(url=url, ops=OPS_TOKEN, whsec=WHSEC), env={})


async def seeded(url: str, count: int) -> tuple[Store, Seeder, dict[str, Any]]:
    """A migrated store at `url` holding `count` watches' rows."""
    store = await open_store(url)
    seeder = Seeder(count, datetime.now(UTC))
    started = time.perf_counter()
    await seeder.write(store)
    seed_s = time.perf_counter() - started
    info: dict[str, Any] = {"watches": count, "rows": dict(seeder.rows)}
    info["rows_total"] = sum(seeder.rows.values())
    info["seed_s"] = round(seed_s, 1)
    if store.db.engine.dialect.name == "postgresql":
        started = time.perf_counter()
        async with store.db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE"))
        info["vacuum_analyze_s"] = round(time.perf_counter() - started, 1)
    return store, seeder, info


async def sign_in(http: httpx.AsyncClient) -> None:
    """Sign in as the operator through the form; the client keeps the session cookie."""
    page = await http.get("/console/login")
    page.raise_for_status()
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    if found is None:
        raise RuntimeError("no csrf_token on the sign-in page")
    form = {"token": OPS_TOKEN, "csrf_token": html.unescape(found[1]), "next": "/console/"}
    answer = await http.post("/console/login", data=form)
    if answer.status_code != 303:
        raise RuntimeError(f"sign-in answered {answer.status_code}")


async def older_cursor(http: httpx.AsyncClient) -> str:
    """The cursor in page 1's "Older" link."""
    page = await http.get("/console/deliveries")
    page.raise_for_status()
    found = _OLDER.search(page.text)
    if found is None:
        raise RuntimeError("no Older link on /console/deliveries")
    query = html.unescape(found[1])
    return dict(p.split("=", 1) for p in query.split("&"))["cursor"]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


async def timed(http: httpx.AsyncClient, path: str) -> tuple[float, int]:
    started = time.perf_counter()
    response = await http.get(path)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"GET {path} answered {response.status_code}")
    return elapsed, len(response.content)


async def measure(
    clients: dict[str, httpx.AsyncClient],
    paths: dict[str, dict[str, str]],
    *,
    requests: int,
    warmups: int,
) -> dict[str, dict[str, float]]:
    """Each page `warmups` + `requests` times, the stores taking turns request by request."""
    out: dict[str, dict[str, float]] = {}
    for page in [*PAGES, BASELINE]:
        times: dict[str, list[float]] = {size: [] for size in clients}
        sizes: dict[str, int] = {}
        for k in range(warmups + requests):
            for size, http in clients.items():
                ms, sizes[size] = await timed(http, paths[size][page])
                if k >= warmups:
                    times[size].append(ms)
        figures: dict[str, float] = {}
        for size, values in times.items():
            figures[f"{size}_p50_ms"] = round(statistics.median(values), 2)
            figures[f"{size}_p95_ms"] = round(percentile(values, 0.95), 2)
        for size, n in sizes.items():
            figures[f"{size}_kb"] = round(n / 1024, 1)
        figures["ratio_p50"] = round(figures["large_p50_ms"] / figures["small_p50_ms"], 2)
        out[page] = figures
    return out


async def run_backend(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {}
    async with databases(kind) as new_database, contextlib.AsyncExitStack() as stack:
        clients: dict[str, httpx.AsyncClient] = {}
        paths: dict[str, dict[str, str]] = {}
        for size, count in (("small", args.small), ("large", args.watches)):
            url = new_database()
            store, seeder, info = await seeded(url, count)
            stack.push_async_callback(store.close)
            result[size] = info
            app = create_app(config_for(url), store=store, background=False)
            server = await stack.enter_async_context(serving(app))
            http = await stack.enter_async_context(
                httpx.AsyncClient(base_url=server.url, timeout=60, trust_env=False)
            )
            await sign_in(http)
            fill = seeder.targets()
            cursor = await older_cursor(http)
            paths[size] = {
                page: page.format(id=fill.get(page, ""), channel=CHANNELS[0], cursor=cursor)
                for page in PAGES
            } | {BASELINE: BASELINE}
            clients[size] = http
        pages = await measure(clients, paths, requests=args.requests, warmups=args.warmups)
    baseline = pages.pop(BASELINE)
    result["baseline"] = {"path": BASELINE, **baseline}
    result["pages"] = pages
    result["pages_over_2x"] = [page for page, f in pages.items() if f["ratio_p50"] > 2]
    return result


async def main(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "small_watches": args.small,
        "large_watches": args.watches,
        "requests_per_page": args.requests,
        "warmups": args.warmups,
        "deliveries_per_watch": EVENTS_PER_WATCH * len(DESTINATIONS),
    }
    started = time.perf_counter()
    for kind in args.backends.split(","):
        try:
            report[kind] = await run_backend(kind, args)
        except Exception as exc:
            from tests.pgcluster import ClusterUnavailable

            if not isinstance(exc, ClusterUnavailable):
                raise
            report[kind] = {"skipped": str(exc)}
    report["total_s"] = round(time.perf_counter() - started, 1)
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watches", type=int, default=100_000, help="watches in the large store")
    parser.add_argument("--small", type=int, default=60, help="watches in the small store")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page")
    parser.add_argument("--warmups", type=int, default=3, help="untimed requests per page first")
    parser.add_argument("--backends", default="sqlite,postgresql")
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
