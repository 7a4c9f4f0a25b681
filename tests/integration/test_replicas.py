"""Two `photo-bridge serve` processes on one PostgreSQL share the work; one is killed with SIGKILL.

Shows: no two replicas poll one job at once (the simulator records every GET's span), the poll
budget holds across replicas, the killed replica's jobs are taken over when its lease expires, and
no event is lost, duplicated or numbered with a gap.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bridge.delivery.signing import new_secret
from bridge.devtools.localserver import serving
from bridge.devtools.simulator import KeyLimits, SimulatorSettings, create_simulator
from tests.plugins.slack_standin import SlackStandin
from tests.ports import free_port

KEY = "aigen_test_replicas"
TOKEN = "replica-test-token"
POLLS_PER_HOUR = 1800  # one poll every 2 s for the whole account, whatever the replica count
JOBS = 4
ITEMS = 4

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


class SpanRecorder:
    """ASGI wrapper around the simulator: the (start, end) of every GET of each job."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.spans: dict[str, list[tuple[float, float]]] = defaultdict(list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/product-photo-jobs/"):
            await self.app(scope, receive, send)
            return
        start = time.monotonic()
        try:
            await self.app(scope, receive, send)
        finally:
            self.spans[path.rsplit("/", 1)[1]].append((start, time.monotonic()))


class Receiver:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.ids: set[str] = set()
        self.bad = 0

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        try:
            Webhook(self.secret).verify(body, dict(request.headers))
        except Exception:
            self.bad += 1
            return Response(status_code=400)
        self.ids.add(request.headers["webhook-id"])
        return Response(status_code=204)


def _config(
    path: Path, *, db: str, upstream: str, secret: str, more_clients: str = "", extra: str = ""
) -> None:
    path.write_text(
        f"""
server: {{host: 127.0.0.1, port: "${{PORT}}"}}
storage: {{url: "{db}"}}
upstream:
  base_url: "{upstream}"
  timeout_s: 1
  accounts:
    main: {{api_key: {KEY}, polls_per_hour: {POLLS_PER_HOUR}, max_concurrency: 4}}
polling: {{queued_interval_s: 1, processing_interval_s: 1, max_interval_s: 2, watch_ttl_h: 1}}
clients:
  shop: {{token: {TOKEN}, accounts: [main], webhook_secrets: ["{secret}"]}}
{more_clients}
delivery: {{timeout_s: 2, retry_schedule_s: [0.5, 1, 2, 4], allowed_hosts: ["127.0.0.1"]}}
"""
        + extra
    )


async def _start(config: Path, port: int, log: Path) -> asyncio.subprocess.Process:
    env = {**os.environ, "PORT": str(port), "BRIDGE_LOG_LEVEL": "WARNING"}
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bridge.cli", "serve", "--config", str(config),
            env=env, stdout=out, stderr=out,
        )  # fmt: skip
    async with httpx.AsyncClient() as client:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                raise AssertionError(f"replica exited early:\n{log.read_text()[-3000:]}")
            try:
                if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return proc
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    proc.kill()
    raise AssertionError(f"replica not ready:\n{log.read_text()[-3000:]}")


async def _wait_all_done(api: httpx.AsyncClient, watch_ids: list[str], within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        done = 0
        for watch_id in watch_ids:
            watch = (await api.get(f"/v1/watches/{watch_id}")).json()["watch"]
            deliveries = (await api.get(f"/v1/watches/{watch_id}/deliveries")).json()["deliveries"]
            if watch["status"] == "completed" and all(
                d["status"] == "delivered" for d in deliveries
            ):
                done += 1
        if done == len(watch_ids):
            return
        await asyncio.sleep(1.0)  # 8 requests a round: well inside the API's per-client rate limit
    raise AssertionError("the surviving replica did not finish every watch in time")


async def test_replicas_share_work_and_survive_sigkill(pg_url, tmp_path):
    secret = new_secret()
    receiver = Receiver(secret)
    settings = SimulatorSettings(
        keys={KEY: KeyLimits(polls_per_hour=POLLS_PER_HOUR, max_active_jobs=JOBS)},
        queue_delay_s=1.0,
        seconds_per_item=1.5,
        failure_rate=0.25,
        seed=11,
    )
    sim = create_simulator(settings)
    recorder = SpanRecorder(sim)
    hook_app = Starlette(routes=[Route("/hook", receiver.hook, methods=["POST"])])
    async with serving(recorder) as upstream, serving(hook_app) as hooks:
        config = tmp_path / "config.yaml"
        _config(config, db=pg_url, upstream=upstream.url, secret=secret)
        port_a, port_b = free_port(), free_port()
        replica_a = await _start(config, port_a, tmp_path / "a.log")
        replica_b = await _start(config, port_b, tmp_path / "b.log")
        started = time.monotonic()
        try:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port_a}", headers=headers
            ) as a:
                watch_ids = []
                for _ in range(JOBS):
                    job_id = sim.state.simulator.create_job(KEY, total_items=ITEMS)
                    response = await a.post(
                        "/v1/watches", json={"job_id": job_id, "webhook_url": f"{hooks.url}/hook"}
                    )
                    assert response.status_code == 201, response.text
                    watch_ids.append(response.json()["watch"]["id"])
            # Slow answers for a while, so the SIGKILL below lands in the middle of polls.
            sim.state.simulator.script(None, [{"delay_s": 0.6}] * 12, api_key=KEY)
            await asyncio.sleep(3.0)  # both replicas are polling now
            replica_a.send_signal(signal.SIGKILL)
            await replica_a.wait()
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port_b}", headers=headers
            ) as b:
                await _wait_all_done(b, watch_ids, within_s=90)
                elapsed = time.monotonic() - started
                events = {
                    w: (await b.get(f"/v1/watches/{w}/events")).json()["events"] for w in watch_ids
                }
        finally:
            for proc in (replica_a, replica_b):
                if proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(replica_b.wait(), 30) == 0  # SIGTERM drains, exits 0

    stats = sim.state.simulator.stats()
    for job_id, spans in recorder.spans.items():
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start >= end, f"two polls of job {job_id} overlapped"
    polls = stats["keys"][KEY]["poll_count"]
    assert stats["keys"][KEY]["rate_limited"] == 0
    assert polls <= 3 + elapsed / (3600 / POLLS_PER_HOUR) + 2, "the budget was overspent"
    all_ids = set()
    for watch_id, watch_events in events.items():
        sequences = [e["data"]["sequence"] for e in watch_events]
        assert sequences == list(range(1, len(sequences) + 1)), watch_id
        finals = [
            e["data"]["item"]["id"]
            for e in watch_events
            if e["type"] in ("item.completed", "item.failed")
        ]
        assert (
            len(finals) == len(set(finals)) == ITEMS
        )  # every item ends once: nothing lost or doubled
        assert watch_events[-1]["type"].startswith("job.")
        all_ids |= {e["data"]["event_id"] for e in watch_events}
    assert receiver.bad == 0
    assert receiver.ids == all_ids  # every event delivered (at least once), none invented


OPS_TOKEN = "replica-ops-token-0123456789"
OTHER_CLIENT = f"  other: {{token: other-{TOKEN}, accounts: [main]}}"
SLACK_ROUTE = """
operators:
  ops: {{token: {ops}}}
channels:
  catalog-slack: {{type: slack, token: xoxb-standin-token, channel: C0123456, base_url: "{url}"}}
routes:
  - {{events: ["*"], accounts: [main], channels: [catalog-slack]}}
"""


async def test_replicas_post_one_slack_message_per_job(pg_url, tmp_path):
    """Two replicas, two clients watching each job: one top-level Slack message per job."""
    slack = SlackStandin()
    sim = create_simulator(
        SimulatorSettings(
            keys={KEY: KeyLimits(polls_per_hour=POLLS_PER_HOUR, max_active_jobs=JOBS)},
            queue_delay_s=1.0,
            seconds_per_item=1.0,
            failure_rate=0.3,
            seed=7,
        )
    )
    async with serving(sim) as upstream, serving(slack.app) as slack_server:
        slack.url = slack_server.url
        config = tmp_path / "config.yaml"
        _config(
            config,
            db=pg_url,
            upstream=upstream.url,
            secret=new_secret(),
            more_clients=OTHER_CLIENT,
            extra=SLACK_ROUTE.format(url=slack.api_url, ops=OPS_TOKEN),
        )
        ports = free_port(), free_port()
        replicas = [await _start(config, p, tmp_path / f"{p}.log") for p in ports]
        try:
            watches: dict[str, list[str]] = {TOKEN: [], f"other-{TOKEN}": []}
            job_ids = [sim.state.simulator.create_job(KEY, total_items=ITEMS) for _ in range(JOBS)]
            for token, port in zip(watches, ports, strict=True):
                auth = {"Authorization": f"Bearer {token}"}
                async with httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{port}", headers=auth
                ) as api:
                    for job_id in job_ids:
                        response = await api.post("/v1/watches", json={"job_id": job_id})
                        assert response.status_code == 201, response.text
                        watches[token].append(response.json()["watch"]["id"])
            for token, port in zip(watches, ports, strict=True):
                auth = {"Authorization": f"Bearer {token}"}
                async with httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{port}", headers=auth
                ) as api:
                    await _wait_all_done(api, watches[token], within_s=90)
            await _channels_settled(f"http://127.0.0.1:{ports[0]}", within_s=60)
        finally:
            for proc in replicas:
                proc.send_signal(signal.SIGTERM)
            for proc in replicas:
                assert await asyncio.wait_for(proc.wait(), 30) == 0

    failed = sum(
        1
        for job_id in job_ids
        for item in sim.state.simulator.peek(job_id)["items"]
        if item["status"] == "failed"
    )
    top = slack.top_level()
    assert len(top) == JOBS
    replies = [r for m in top for r in slack.replies(m.ts) if not r.reply_broadcast]
    assert len(replies) == failed


async def _channels_settled(base_url: str, *, within_s: float) -> None:
    """Wait until no configured channel has a pending delivery (the operator sees them all)."""
    auth = {"Authorization": f"Bearer {OPS_TOKEN}"}
    deadline = time.monotonic() + within_s
    async with httpx.AsyncClient(base_url=base_url, headers=auth) as api:
        while time.monotonic() < deadline:
            channels = (await api.get("/v1/ops/channels")).json()["channels"]
            if all(c["pending"] == 0 for c in channels):
                return
            await asyncio.sleep(0.5)
    raise AssertionError("the Slack channel did not settle in time")
