"""Webhook delivery throughput and latency, beside the raw httpx POST rate; prints one JSON object.

A receiver runs in its own process (so its CPU is not the bridge's): it answers 200 to every POST
and notes when each `webhook-id` arrived. Measured per storage backend (SQLite, PostgreSQL):

- throughput: a backlog of `--watches` x `--events` committed deliveries drained by one Deliverer;
- latency: events committed at `--rate` per second for `--seconds`; p50/p99 from an event's commit
  (its created_at) to its receipt. With `--hanging N`, N more receivers (in this process) accept
  and never answer, each the webhook of 6 watches that get events too: the latency is the healthy
  receiver's.

The deliverer runs as `serve` runs it: the scheduler (ticking every `--tick` s) calls
`dispatch_due()`, and a commit or a freed slot nudges it.

The baseline is httpx POSTing an event-sized body to the same receiver at concurrency 1, 8 and the
Deliverer's, measured just before and just after each backend (the machine may be shared); the
ratio is to the best of those.

    python bench/delivery.py [--watches 300] [--events 4] [--rate 200] [--seconds 4] [--hanging 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any

import httpx
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge.background import Background
from bridge.clock import utcnow
from bridge.config import Config
from bridge.delivery import signing
from bridge.delivery.channels.registry import ChannelRegistry
from bridge.delivery.deliverer import (
    LANE_DEPTH,
    MAX_HELD,
    MAX_SENDING,
    PER_DESTINATION,
    Deliverer,
)
from bridge.delivery.lanes import Lanes
from bridge.events.payloads import iso
from bridge.ids import new_id
from bridge.ops.metrics import Metrics
from bridge.store import Store, open_store
from bridge.store.tables import deliveries, events, watches

RAW_CONCURRENCY = (1, PER_DESTINATION, 8, 32, MAX_SENDING)
HANGING_WATCHES = 6  # per hanging receiver: more than its PER_DESTINATION slots


def serve_receiver() -> None:
    """The child process: a receiver that records arrival times; prints its URL when ready."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    from bridge.devtools.localserver import serving

    arrivals: dict[str, float] = {}

    async def hook(request: Request) -> Response:
        await request.body()
        arrivals.setdefault(request.headers.get("webhook-id", ""), time.time())
        return PlainTextResponse("ok")

    async def take(request: Request) -> Response:
        taken = dict(arrivals)
        arrivals.clear()
        return JSONResponse(taken)

    async def run() -> None:
        app = Starlette(
            routes=[
                Route("/hook", hook, methods=["POST"]),
                Route("/arrivals", take, methods=["POST"]),
            ]
        )
        async with serving(app) as server:
            print(server.url, flush=True)
            await asyncio.Event().wait()

    asyncio.run(run())


@contextlib.contextmanager
def receiver() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--receiver"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError("the receiver did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def take_arrivals(http: httpx.AsyncClient, url: str) -> dict[str, float]:
    response = await http.post(url + "/arrivals")
    response.raise_for_status()
    return {key: float(value) for key, value in response.json().items()}


@contextlib.asynccontextmanager
async def storage(kind: str) -> AsyncIterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/bench.db"
        return
    from tests.pgcluster import running_cluster

    with running_cluster() as server:
        yield server.create_database()


def make_config(secret: str) -> Config:
    return Config.model_validate(
        {
            "upstream": {"accounts": {"main": {"api_key": "aigen_test_bench"}}},
            "clients": {
                "shop": {"token": "bench-token", "accounts": ["main"], "webhook_secrets": [secret]}
            },
            "delivery": {"timeout_s": 10, "allowed_hosts": ["127.0.0.1"]},
        }
    )


def payload(event_id: str, watch_id: str, sequence: int, at: datetime) -> dict[str, Any]:
    data = {
        "event_id": event_id,
        "watch_id": watch_id,
        "job_id": "job",
        "account": "main",
        "sequence": sequence,
        "metadata": {"order": "A-1"},
        "previous_status": "queued",
        "job": {
            "status": "processing",
            "total_items": 20,
            "completed_items": 7,
            "failed_items": 0,
            "credits_used": 7,
        },
        "item": None,
    }
    return {"type": "job.processing", "timestamp": iso(at), "data": data}


async def add_watches(store: Store, count: int, url: str) -> list[str]:
    now = datetime.now(UTC)
    rows = [
        {
            "id": new_id("wat"),
            "client": "shop",
            "account": "main",
            "job_id": f"job-{n}",
            "status": "active",
            "webhook_url": url,
            "events": ["*"],
            "metadata": {},
            "last_sequence": 0,
            "created_at": now,
            "updated_at": now,
            "expires_at": now + timedelta(hours=1),
        }
        for n in range(count)
    ]
    async with store.db.engine.begin() as conn:
        await conn.execute(watches.insert(), rows)
    return [row["id"] for row in rows]


async def commit_events(store: Store, batch: list[tuple[str, int]]) -> dict[str, datetime]:
    """Commit one event per (watch, sequence) with its delivery; returns event id -> created_at."""
    at = datetime.now(UTC)
    event_rows, delivery_rows = [], []
    for watch_id, sequence in batch:
        event_id = new_id("evt")
        event_rows.append(
            {
                "id": event_id,
                "watch_id": watch_id,
                "sequence": sequence,
                "type": "job.processing",
                "payload": payload(event_id, watch_id, sequence, at),
                "created_at": at,
            }
        )
        delivery_rows.append(
            {
                "id": new_id("dlv"),
                "event_id": event_id,
                "watch_id": watch_id,
                "sequence": sequence,
                "stream": f"watch:{watch_id}",
                "position": sequence,
                "destination": "webhook_url",
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": at,
                "created_at": at,
                "updated_at": at,
            }
        )
    async with store.db.engine.begin() as conn:
        await conn.execute(events.insert(), event_rows)
        await conn.execute(deliveries.insert(), delivery_rows)
    return {row["id"]: at for row in event_rows}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


class Driven:
    """The deliverer as `serve` runs it: the scheduler calls `dispatch_due`, nudged by a commit or
    by a lane that wants more rows."""

    def __init__(self) -> None:
        self.work = Background()

    def nudge(self) -> None:
        self.work.nudge("deliver")


async def until_settled(store: Store) -> None:
    """Wait until no delivery is pending (every 20 ms: a cheap indexed count)."""
    query = select(func.count()).select_from(deliveries).where(deliveries.c.status == "pending")
    while True:
        async with store.db.engine.connect() as conn:
            if (await conn.execute(query)).scalar_one() == 0:
                return
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def hanging_receivers(count: int) -> AsyncIterator[list[str]]:
    """`count` servers that accept, read and never answer; yields their hook URLs."""
    release = asyncio.Event()

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        closed = asyncio.ensure_future(reader.read())
        released = asyncio.ensure_future(release.wait())
        await asyncio.wait({closed, released}, return_when=asyncio.FIRST_COMPLETED)
        for waiter in (closed, released):
            waiter.cancel()
        writer.close()

    servers = [await asyncio.start_server(hang, "127.0.0.1", 0) for _ in range(count)]
    try:
        yield [f"http://127.0.0.1:{s.sockets[0].getsockname()[1]}/hook" for s in servers]
    finally:
        release.set()
        for server in servers:
            server.close()
            await server.wait_closed()


async def throughput(
    driven: Driven, store: Store, url: str, http: httpx.AsyncClient, args: argparse.Namespace
) -> dict[str, Any]:
    watch_ids = await add_watches(store, args.watches, url + "/hook")
    committed: dict[str, datetime] = {}
    for sequence in range(1, args.events + 1):
        committed |= await commit_events(store, [(w, sequence) for w in watch_ids])
    started = time.monotonic()
    driven.nudge()
    await until_settled(store)
    elapsed = time.monotonic() - started
    arrived = await take_arrivals(http, url)
    return {
        "deliveries": len(committed),
        "received": len(arrived.keys() & committed.keys()),
        "seconds": round(elapsed, 2),
        "per_second": round(len(committed) / elapsed, 1),
    }


async def latency(
    driven: Driven, store: Store, url: str, http: httpx.AsyncClient, args: argparse.Namespace
) -> dict[str, Any]:
    watch_ids = await add_watches(store, args.watches, url + "/hook")
    async with hanging_receivers(args.hanging) as stuck_urls:
        stuck_ids = [
            w for stuck in stuck_urls for w in await add_watches(store, HANGING_WATCHES, stuck)
        ]
        committed = await produce(driven, store, watch_ids, stuck_ids, args)
        arrived: dict[str, float] = {}
        deadline = time.monotonic() + 30
        while committed.keys() - arrived.keys() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            arrived |= await take_arrivals(http, url)
    delays_ms = [
        (arrived[e] - at.timestamp()) * 1000 for e, at in committed.items() if e in arrived
    ]
    return {
        "events": len(committed),
        "received": len(delays_ms),
        "offered_per_second": round(len(committed) / args.seconds, 1),
        "hanging_receivers": args.hanging,
        "p50_ms": round(statistics.median(delays_ms), 1),
        "p99_ms": round(percentile(delays_ms, 0.99), 1),
        "max_ms": round(max(delays_ms), 1),
    }


async def produce(
    driven: Driven,
    store: Store,
    watch_ids: list[str],
    stuck_ids: list[str],
    args: argparse.Namespace,
) -> dict[str, datetime]:
    """Commit events at `--rate` for `--seconds` (the hanging watches' too); healthy ones returned."""
    committed: dict[str, datetime] = {}
    step_s, per_step = 0.02, max(1, round(args.rate * 0.02))
    sequence, cursor = 1, 0
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        batch = []
        for _ in range(per_step):
            batch.append((watch_ids[cursor], sequence))
            cursor += 1
            if cursor == len(watch_ids):
                cursor, sequence = 0, sequence + 1
                if stuck_ids:
                    await commit_events(store, [(w, sequence) for w in stuck_ids])
        committed.update(await commit_events(store, batch))
        driven.nudge()  # as the poller does once its events are committed
        await asyncio.sleep(step_s)
    return committed


async def run_backend(
    kind: str, url: str, http: httpx.AsyncClient, args: argparse.Namespace
) -> dict[str, Any]:
    async with storage(kind) as db:
        store = await open_store(db)
        config = make_config(signing.new_secret())
        registry = ChannelRegistry(
            config=config, http=http, state=store.channel_state, renderer=None
        )
        driven = Driven()
        deliverer = Deliverer(
            store=store,
            channels=registry,
            settings=config.delivery,
            metrics=Metrics(),
            now=utcnow,
            owner="bench",
            rng=Random(1),
            lanes=Lanes(
                sending=MAX_SENDING,
                per_destination=args.per_destination,
                held=MAX_HELD,
                depth=max(LANE_DEPTH, args.per_destination),
            ),
            on_free=driven.nudge,
        )
        driven.work.start({"deliver": (deliverer.dispatch_due, args.tick)})
        try:
            result = {"throughput": await throughput(driven, store, url, http, args)}
            result["latency"] = await latency(driven, store, url, http, args)
        finally:
            await driven.work.stop()
            await deliverer.aclose(timeout_s=1)
            await store.close()
        return result


async def raw_posts(
    http: httpx.AsyncClient, url: str, count: int, *, concurrency: int
) -> dict[str, Any]:
    """httpx alone: `count` POSTs of an event-sized body, `concurrency` at a time."""
    now = datetime.now(UTC)
    body = json.dumps(payload("evt_x", "wat_x", 1, now), separators=(",", ":")).encode()
    queue = iter(range(count))

    async def worker() -> None:
        for n in queue:
            response = await http.post(
                url + "/hook",
                content=body,
                headers={"content-type": "application/json", "webhook-id": f"raw_{n}"},
                timeout=10,
            )
            response.raise_for_status()

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    await take_arrivals(http, url)
    return {"posts": count, "seconds": round(elapsed, 2), "per_second": round(count / elapsed, 1)}


async def raw_rates(http: httpx.AsyncClient, url: str, count: int) -> dict[str, float]:
    """The raw POST rate at a few concurrencies: httpx's pool slows as concurrency grows."""
    rates = {}
    for concurrency in RAW_CONCURRENCY:
        done = await raw_posts(http, url, count, concurrency=concurrency)
        rates[str(concurrency)] = float(done["per_second"])
    return rates


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--watches", type=int, default=300)
    parser.add_argument("--events", type=int, default=4)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--tick", type=float, default=1.0)
    parser.add_argument("--hanging", type=int, default=0)
    parser.add_argument("--per-destination", type=int, default=PER_DESTINATION)
    parser.add_argument("--raw-posts", type=int, default=500)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    report: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "lanes": {
            "sending": MAX_SENDING,
            "per_destination": args.per_destination,
            "depth": max(LANE_DEPTH, args.per_destination),
            "held": MAX_HELD,
        },
        "backlog": f"{args.watches} watches x {args.events} events",
        "tick_s": args.tick,
    }
    async with asyncio.timeout(300):
        with receiver() as url:
            # Keep-alive for every concurrent send: the default 20 closes and reopens the rest.
            limits = httpx.Limits(max_connections=100, max_keepalive_connections=MAX_SENDING)
            async with httpx.AsyncClient(trust_env=False, limits=limits) as http:
                # Warm up: connections, the receiver's imports.
                await raw_posts(http, url, 200, concurrency=MAX_SENDING)
                for kind in args.backends.split(","):
                    # The machine may be shared: the baseline is measured right before and after.
                    before = await raw_rates(http, url, args.raw_posts)
                    result = await run_backend(kind, url, http, args)
                    after = await raw_rates(http, url, args.raw_posts)
                    raw = {c: round((before[c] + after[c]) / 2, 1) for c in before}
                    result["httpx_raw_post_per_second_by_concurrency"] = raw
                    result["throughput"]["ratio_to_best_raw"] = round(
                        result["throughput"]["per_second"] / max(raw.values()), 3
                    )
                    report[kind] = result
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    if sys.argv[1:] == ["--receiver"]:
        serve_receiver()
    else:
        asyncio.run(main())
