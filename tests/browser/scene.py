"""A running scene for the console's browser tests: the upstream simulator, the bridge (polling and
delivery in the background, on the real clock), a webhook receiver that can be told to fail or hold,
and a stand-in CDN for thumbnails, all on 127.0.0.1 in one event loop on a thread of its own, so
the tests can drive Playwright's sync API from the main thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import struct
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bridge.app import create_app
from bridge.config import parse_config
from bridge.delivery.signing import new_secret
from bridge.devtools.localserver import LocalServer
from bridge.devtools.simulator import KeyLimits, Simulator, SimulatorSettings, create_simulator
from bridge.devtools.simulator.progress import item_failure

KEYS = {"studio-eu": "aigen_test_browser_eu", "studio-us": "aigen_test_browser_us"}
CLIENT_TOKEN = "shop-token-browser-0001"
OPS_TOKEN = "ops-token-browser-0002"
SETTINGS = SimulatorSettings(
    keys={key: KeyLimits(polls_per_hour=100_000, max_active_jobs=50) for key in KEYS.values()},
    queue_delay_s=0.5,
    seconds_per_item=0.3,
    failure_rate=0.25,
    seed=7,
)
CONFIG = """
storage: {{url: "sqlite:///{db}"}}
upstream:
  base_url: "{sim}"
  timeout_s: 3
  transport: httpx
  accounts:
    studio-eu: {{api_key: {eu}, polls_per_hour: 36000, max_concurrency: 4}}
    studio-us: {{api_key: {us}, polls_per_hour: 36000, max_concurrency: 4}}
polling: {{queued_interval_s: 0.5, processing_interval_s: 0.5, max_interval_s: 1, watch_ttl_h: 48}}
clients:
  shop: {{token: {client}, accounts: [studio-eu, studio-us], webhook_secrets: ["{secret}"]}}
operators:
  ops: {{token: {ops}}}
channels:
  ops-hook: {{type: webhook, url: "{hooks}/ops", secret: "{secret}"}}
  archive-hook: {{type: webhook, url: "{hooks}/archive", secret: "{secret}"}}
routes:
  - {{events: ["*"], channels: [ops-hook]}}
  - {{events: ["import.*"], channels: [archive-hook]}}
delivery: {{timeout_s: 15, retry_schedule_s: [0.2, 0.2], allowed_hosts: ["127.0.0.1"]}}
"""


async def no_dns(host: str, port: int) -> list[str]:
    """Nothing resolves: the simulator's CDN thumbnails fall back to the placeholder at once."""
    raise OSError(f"no such host {host}")


class Receiver:
    """The ops-hook channel's endpoint: answers 204, or 500 while `mode` is "fail", or holds each
    request while `mode` is "hold"; the archive-hook channel's endpoint always answers 204."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.answered: dict[str, int] = {"ok": 0, "fail": 0}

    async def ops(self, request: Request) -> Response:
        await request.body()
        while self.mode == "hold":  # released from the test's thread by a change of mode
            await asyncio.sleep(0.05)
        if self.mode == "fail":
            self.answered["fail"] += 1
            return Response(status_code=500)
        self.answered["ok"] += 1
        return Response(status_code=204)

    async def archive(self, request: Request) -> Response:
        await request.body()
        return Response(status_code=204)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/ops", self.ops, methods=["POST"]),
                Route("/archive", self.archive, methods=["POST"]),
            ]
        )


def png(width: int, height: int, top: tuple[int, int, int], bottom: tuple[int, int, int]) -> bytes:
    """A small PNG with a vertical gradient from `top` to `bottom` (a thumbnail's stand-in)."""
    rows = []
    for y in range(height):
        t = y / max(1, height - 1)
        pixel = bytes(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        rows.append(b"\x00" + pixel * width)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


PALETTE = ((214, 228, 240), (240, 222, 205), (221, 236, 218), (236, 220, 236), (245, 240, 214))


async def thumbnail(request: Request) -> Response:
    """GET /thumb/{n}.png: a gradient thumbnail, its colour picked by n."""
    n = int(request.path_params["n"])
    top = PALETTE[n % len(PALETTE)]
    bottom = tuple(max(0, c - 60) for c in top)
    return Response(png(96, 96, top, bottom), media_type="image/png")  # type: ignore[arg-type]


def job_id_where(fails: Callable[[list[bool]], bool], *, items: int, start: int = 0) -> str:
    """A job id whose items' fates (True = fails, in the simulator's settings) satisfy `fails`."""
    for n in range(start, start + 10_000):
        digest = hashlib.sha256(f"browser-job-{n}".encode()).digest()
        job_id = str(uuid.UUID(bytes=digest[:16], version=4))
        fates = [item_failure(job_id, i, SETTINGS) is not None for i in range(items)]
        if fails(fates):
            return job_id
    raise AssertionError("no job id with those fates")


class Scene:
    """The servers, started and stopped from the test's thread."""

    def __init__(self) -> None:
        self.receiver = Receiver()
        self._folder = tempfile.TemporaryDirectory(prefix="photo-bridge-browser-")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._servers: list[LocalServer] = []
        self.sim: Simulator
        self.url = ""
        self.cdn = ""
        self._jobs_made = 0
        self.ids: dict[str, str] = {}  # what realistic() made, by name

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Scene:
        self._thread.start()
        self.run(self._start())
        return self

    async def _start(self) -> None:
        sim_app = create_simulator(SETTINGS)
        self.sim = sim_app.state.simulator
        cdn = Starlette(routes=[Route("/thumb/{n:int}.png", thumbnail)])
        sim_server = await self._serve(sim_app)
        hooks = await self._serve(self.receiver.app())
        self.cdn = (await self._serve(cdn)).url
        config = parse_config(
            CONFIG.format(
                db=f"{self._folder.name}/bridge.db",
                sim=sim_server.url,
                hooks=hooks.url,
                eu=KEYS["studio-eu"],
                us=KEYS["studio-us"],
                client=CLIENT_TOKEN,
                ops=OPS_TOKEN,
                secret=new_secret(),
            ),
            env={},
        )
        self.url = (await self._serve(create_app(config, resolve=no_dns))).url

    async def _serve(self, app: Any) -> LocalServer:
        server = LocalServer(app)
        await server.start()
        self._servers.append(server)
        return server

    def stop(self) -> None:
        self.receiver.mode = "ok"  # a held request would hold the bridge's drain
        try:
            self.run(self._stop(), timeout_s=60)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()
            self._folder.cleanup()

    async def _stop(self) -> None:
        for server in reversed(self._servers):
            await server.stop()

    def run(self, coro: Coroutine[Any, Any, Any], *, timeout_s: float = 30) -> Any:
        """Run a coroutine in the scene's loop and return its result."""
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout=timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    # -- the bridge's API, as a client and as the operator -----------------------------------

    def api(self, method: str, path: str, *, operator: bool = False, **kwargs: Any) -> Any:
        token = OPS_TOKEN if operator else CLIENT_TOKEN
        with httpx.Client(base_url=self.url, timeout=10, trust_env=False) as http:
            response = http.request(
                method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs
            )
        assert response.status_code < 300, (response.status_code, response.text)
        return response.json()

    def new_job(
        self,
        account: str,
        *,
        external_ids: list[str],
        fails: Callable[[list[bool]], bool] = lambda fates: True,
    ) -> str:
        """A job on the simulator for the account, whose items' fates satisfy `fails`."""
        self._jobs_made += 1
        job_id = job_id_where(fails, items=len(external_ids), start=self._jobs_made * 1000)
        return str(
            self.sim.create_job(
                KEYS[account],
                external_ids=external_ids,
                job_id=job_id,
                total_items=len(external_ids),
            )
        )

    def freeze(self, job_id: str, *, done: int, failed: set[int]) -> None:
        """Hold the job mid-way: its first `done` items finished (those in `failed` failed, the
        others completed with a thumbnail from the stand-in CDN), the next processing."""
        body = self.sim.peek(job_id)
        items = body["items"]
        for n, item in enumerate(items):
            if n < done and n in failed:
                item.update(
                    status="failed",
                    error_code="product_not_detected",
                    error_message="No product could be detected in the source image.",
                )
            elif n < done:
                item.update(
                    status="completed",
                    credits_used=1,
                    result_url=f"{self.cdn}/thumb/{n}.png",
                    thumbnail_url=f"{self.cdn}/thumb/{n}.png",
                )
            elif n == done:
                item["status"] = "processing"
        completed = sum(1 for i in items if i["status"] == "completed")
        body.update(
            status="processing",
            completed_items=completed,
            failed_items=sum(1 for i in items if i["status"] == "failed"),
            credits_used=completed,
        )
        self.sim.set_job(job_id, body)

    def create_import(self, name: str, *, account: str, jobs: list[str], **body: Any) -> str:
        """An import over the client API, expecting its `jobs` (or the body's expected_jobs)."""
        body.setdefault("expected_jobs", len(jobs))
        created = self.api("POST", "/v1/imports", json={"name": name, "account": account, **body})
        import_id = str(created["import"]["id"])
        if jobs:
            self.api("POST", f"/v1/imports/{import_id}/jobs", json={"job_ids": jobs})
        return import_id

    def create_watch(self, job_id: str, *, account: str, metadata: dict[str, str]) -> str:
        created = self.api(
            "POST", "/v1/watches", json={"job_id": job_id, "account": account, "metadata": metadata}
        )
        return str(created["watch"]["id"])


def wait_until(check: Callable[[], Any], *, within_s: float = 20, what: str = "") -> Any:
    """Call `check` until it returns something truthy, or fail after `within_s` seconds."""
    deadline = time.monotonic() + within_s
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within_s} s waiting for {what or check}")
        time.sleep(0.1)  # a poll interval under a deadline, not a wait for something to happen


def realistic(scene: Scene) -> dict[str, str]:
    """A scene worth a screenshot: a running import with failures on studio-eu, a finished one,
    a few watches on studio-us, and dead deliveries on the ops-hook channel (whose receiver
    fails while the events go out). Returns ids by name."""
    scene.receiver.mode = "fail"
    skus = [f"SPR-{n:04d}" for n in range(1001, 1013)]
    done_job = scene.new_job("studio-eu", external_ids=skus[:4], fails=lambda f: f.count(True) == 1)
    busy_job = scene.new_job("studio-eu", external_ids=skus[4:12])
    queued_job = scene.new_job(
        "studio-eu", external_ids=[f"SPR-{n:04d}" for n in range(1013, 1019)]
    )
    scene.freeze(busy_job, done=5, failed={2})
    scene.sim.set_job(queued_job, scene.sim.peek(queued_job))  # stays queued
    running = scene.create_import(
        "Spring catalog 2026",
        account="studio-eu",
        jobs=[done_job, busy_job, queued_job],
        metadata={"season": "spring", "batch": "2026-03"},
    )
    small = scene.new_job(
        "studio-eu", external_ids=["WIN-0001", "WIN-0002"], fails=lambda f: not any(f)
    )
    finished = scene.create_import("Winter leftovers", account="studio-eu", jobs=[small])
    watches = {}
    for n, (label, count) in enumerate((("hero", 3), ("lookbook", 6), ("banner", 2))):
        job = scene.new_job("studio-us", external_ids=[f"{label}-{i}" for i in range(count)])
        if n == 1:
            scene.freeze(job, done=3, failed={1})
        watches[label] = scene.create_watch(
            job, account="studio-us", metadata={"campaign": label, "team": "studio"}
        )

    def settled() -> bool:
        channels = {
            c["name"]: c for c in scene.api("GET", "/v1/ops/channels", operator=True)["channels"]
        }
        ended = scene.api("GET", f"/v1/imports/{finished}")["import"]["ended_at"]
        polled = all(scene.api("GET", f"/v1/watches/{w}")["watch"]["job"] for w in watches.values())
        images = scene.api("GET", f"/v1/imports/{running}")["import"]["images"]
        failing = images["failed"] >= 2  # the finished job's failure and the busy job's
        return bool(ended) and polled and failing and channels["ops-hook"]["dead"] >= 5

    wait_until(settled, within_s=30, what="the scene's imports, watches and dead deliveries")
    return {"running": running, "finished": finished, "busy_job": busy_job, **watches}
