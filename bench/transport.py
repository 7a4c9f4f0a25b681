"""Requests/second and client CPU of the HTTP stacks the upstream client can use; prints one JSON.

A uvicorn server in a child process (so its CPU is not the client's) answers every GET with one
20-item job. For each variant, `--concurrency` workers send `--requests` GETs (or stop at
`--max-seconds`); rounds are interleaved and the median round is reported.

    python bench/transport.py [--requests 5000] [--concurrency 50] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import platform
import select
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from importlib import metadata
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from bridge.polling.outcomes import Ok
from bridge.polling.upstream import UpstreamClient, make_transport

JOB_ID = "6f1c1d2e-8a4b-4c3d-9e8f-0a1b2c3d4e5f"
PATH = f"/api/v1/product-photo-jobs/{JOB_ID}"
TIMEOUT_S = 10.0

Fetch = Callable[[], Awaitable[bool]]


def job_body(items: int = 20) -> bytes:
    """A processing job of `items` items, half done, as the upstream would send it."""
    return json.dumps(
        {
            "job": {
                "id": JOB_ID,
                "status": "processing",
                "total_items": items,
                "credits_reserved": items,
                "sandbox": True,
                "completed_items": items // 2,
                "failed_items": 0,
                "credits_used": items // 2,
                "items": [
                    {
                        "id": f"0b9d6a4e-{n:04d}-4c3d-9e8f-0a1b2c3d4e5f",
                        "external_id": f"sku-{n}",
                        "status": "completed" if n < items // 2 else "processing",
                        "credits_reserved": 1,
                        "credits_used": 1 if n < items // 2 else 0,
                        "result_url": f"https://cdn.example/r/{n}.png" if n < items // 2 else None,
                        "thumbnail_url": f"https://cdn.example/t/{n}.png"
                        if n < items // 2
                        else None,
                        "error_code": None,
                        "error_message": None,
                    }
                    for n in range(items)
                ],
            },
            "request_id": "req_bench",
        }
    ).encode()


def serve() -> None:
    """Child process: bind a free port, tell the parent on stdout, serve the job until SIGTERM."""
    import uvicorn

    body = job_body()
    headers = [(b"content-type", b"application/json"), (b"x-ratelimit-limit", b"120")]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    # IPPROTO_TCP, not 0: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP,
    # and without it uvicorn's two writes per response meet delayed ACKs (~40 ms per request).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)  # connections wait in the backlog until uvicorn accepts them
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(
        app, lifespan="off", log_level="warning", access_log=False, timeout_keep_alive=30
    )
    uvicorn.Server(config).run(sockets=[sock])


@contextlib.contextmanager
def server_process() -> Iterator[tuple[str, int]]:
    """Start the server child; yield (base_url, pid); stop it by its own pid afterwards."""
    child = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve"], stdout=subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        ready, _, _ = select.select([child.stdout], [], [], 15)
        if not ready:
            raise RuntimeError("benchmark server did not start within 15 s")
        port = int(child.stdout.readline())
        yield f"http://127.0.0.1:{port}", child.pid
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=10)


def process_cpu_s(pid: int) -> float:
    """User+system CPU seconds of another process, from /proc (Linux)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.asynccontextmanager
async def variant(name: str, base: str) -> AsyncIterator[Fetch]:
    """Yield a one-request coroutine factory for the named HTTP stack; clean up afterwards."""
    url = base + PATH
    if name == "aiohttp_raw":
        timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session:

            async def fetch_raw() -> bool:
                async with session.get(url) as response:
                    await response.read()
                    return response.status == 200

            yield fetch_raw
    elif name.startswith("httpx_"):
        transport: httpx.AsyncBaseTransport | None = None
        limits = httpx.Limits()  # httpx's defaults: 100 connections, 20 kept alive
        if name == "httpx_aiohttp":
            transport = AiohttpTransport()
        elif name == "httpx_default_pool50":
            limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        async with httpx.AsyncClient(transport=transport, limits=limits, timeout=TIMEOUT_S) as c:

            async def fetch_httpx() -> bool:
                return (await c.get(url)).status_code == 200

            yield fetch_httpx
    else:
        kind = name.removeprefix("upstream_")
        client = UpstreamClient(
            base_url=base + "/api/v1",
            api_key="aigen_test_bench",
            timeout_s=TIMEOUT_S,
            transport=make_transport(kind),
        )
        try:

            async def fetch_upstream() -> bool:
                return isinstance(await client.fetch_job(JOB_ID), Ok)

            yield fetch_upstream
        finally:
            await client.aclose()


async def drive(fetch: Fetch, *, total: int, concurrency: int, max_s: float) -> tuple[int, int]:
    """Send up to `total` requests from `concurrency` workers, stopping at `max_s`."""
    left = total
    done = failed = 0
    stop_at = time.perf_counter() + max_s

    async def worker() -> None:
        nonlocal left, done, failed
        while left > 0 and time.perf_counter() < stop_at:
            left -= 1
            try:
                ok = await fetch()
            except Exception:
                ok = False
            done += 1
            failed += not ok

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done, failed


async def measure(
    name: str, base: str, server_pid: int, args: argparse.Namespace
) -> dict[str, Any]:
    """One round of one variant: warm up, then time the measured requests."""
    async with variant(name, base) as fetch:
        await drive(fetch, total=args.concurrency * 4, concurrency=args.concurrency, max_s=10)
        wall0, cpu0, srv0 = time.perf_counter(), time.process_time(), process_cpu_s(server_pid)
        done, failed = await drive(
            fetch, total=args.requests, concurrency=args.concurrency, max_s=args.max_seconds
        )
        wall = time.perf_counter() - wall0
        cpu, srv = time.process_time() - cpu0, process_cpu_s(server_pid) - srv0
    return {
        "requests": done,
        "failed": failed,
        "wall_s": wall,
        "req_per_s": done / wall,
        "client_cpu_s_per_1k": cpu / done * 1000,
        "server_cpu_share": srv / wall,
    }


VARIANTS = (
    "aiohttp_raw",
    "httpx_default",
    "httpx_default_pool50",
    "httpx_aiohttp",
    "upstream_httpx",
    "upstream_aiohttp",
)


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIANTS}
    with server_process() as (base, pid):
        for _ in range(args.rounds):
            for name in VARIANTS:
                runs[name].append(await measure(name, base=base, server_pid=pid, args=args))
    results: dict[str, Any] = {}
    for name, rounds in runs.items():
        median = sorted(rounds, key=lambda r: r["req_per_s"])[len(rounds) // 2]
        results[name] = {
            "req_per_s": round(median["req_per_s"], 1),
            "req_per_s_rounds": [round(r["req_per_s"], 1) for r in rounds],
            "client_cpu_s_per_1k": round(
                statistics.median(r["client_cpu_s_per_1k"] for r in rounds), 4
            ),
            "server_cpu_share": round(median["server_cpu_share"], 2),
            "requests": median["requests"],
            "failed": sum(r["failed"] for r in rounds),
        }
    for result in results.values():
        result["vs_aiohttp_raw"] = round(
            result["req_per_s"] / results["aiohttp_raw"]["req_per_s"], 3
        )
        result["vs_httpx_default"] = round(
            result["req_per_s"] / results["httpx_default"]["req_per_s"], 3
        )
    return {
        "benchmark": "transport",
        "concurrency": args.concurrency,
        "requests_per_round": args.requests,
        "rounds": args.rounds,
        "body_bytes": len(job_body()),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "versions": {
            p: metadata.version(p)
            for p in ("httpx", "httpcore", "aiohttp", "httpx-aiohttp", "uvicorn")
        },
        "server": "uvicorn, separate process, raw ASGI app, " + _uvicorn_http(),
        "results": results,
    }


def _uvicorn_http() -> str:
    if importlib.util.find_spec("httptools") is None:
        return "h11 (httptools not installed)"
    return "httptools"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-seconds", type=float, default=30.0, help="cap per measured run")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    print(json.dumps(asyncio.run(bench(args)), indent=2))


if __name__ == "__main__":
    main()
