"""run_demo(): the whole bridge on embedded defaults, through the same code paths as `serve`.

The simulator stands in for AI Gen Studio, SQLite lives in a temporary folder, and a local receiver
verifies every webhook with the `standardwebhooks` package. A 20-image job is created on the
simulator's API with a `webhook_url` of the bridge's /upstream/demo/signals, a watch is registered on
the bridge's API, and each event is printed as the receiver gets it; then a summary, which counts the
simulator's signed signals and those that brought the job's next poll forward. Nothing leaves
127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from standardwebhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bridge.app import create_app
from bridge.config import Config, parse_config
from bridge.delivery.signing import new_secret
from bridge.devtools.localserver import serving
from bridge.devtools.simulator import KeyLimits, SimulatorSettings, create_simulator

DEMO_ACCOUNT = "demo"
DEMO_KEY = "aigen_test_demo"
DEMO_TOKEN = "demo-client-token"
DEADLINE_S = 55.0


@dataclass
class Receiver:
    """A webhook endpoint that verifies every signature and prints each event as it lands."""

    secret: str
    started: float = field(default_factory=time.monotonic)
    events: list[dict[str, Any]] = field(default_factory=list)
    verified: int = 0
    rejected: int = 0
    duplicates: int = 0
    seen: set[str] = field(default_factory=set)

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        try:
            payload = Webhook(self.secret).verify(body, dict(request.headers))
        except Exception:  # any verification failure is a rejected signature, counted and shown
            self.rejected += 1
            print("  !! signature rejected")
            return Response(status_code=400)
        self.verified += 1
        event_id = request.headers["webhook-id"]
        if event_id in self.seen:
            self.duplicates += 1  # a retry of an event already received: receivers drop these
            return Response(status_code=204)
        self.seen.add(event_id)
        self.events.append(payload)
        self._show(payload)
        return Response(status_code=204)

    def _show(self, event: dict[str, Any]) -> None:
        data = event["data"]
        if "import" in data:  # an import's own event: its share done
            images = data["import"]["images"]
            done = images["completed"] + images["failed"]
            print(
                f"  {time.monotonic() - self.started:5.1f}s  #{data['sequence']:<3} "
                f"{event['type']:<28}{done}/{images['total']} images finished"
            )
            return
        item = data.get("item") or {}
        job = data.get("job") or {}
        what = item.get("external_id") or ""
        moved = f"{data.get('previous_status') or '-'} -> {item.get('status') or job.get('status')}"
        progress = f"{job.get('completed_items', 0)}+{job.get('failed_items', 0)}/{job.get('total_items', 0)}"
        error = f"  {item['error_code']}" if item.get("error_code") else ""
        print(
            f"  {time.monotonic() - self.started:5.1f}s  #{data['sequence']:<3} {event['type']:<24}"
            f"{what:<10} {moved:<26} {progress}{error}"
        )

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])


def demo_config(*, upstream_url: str, db_path: str, secret: str) -> Config:
    """The demo's configuration: intervals short enough for a minute, long enough that the
    upstream's signals, not the intervals, bring most polls."""
    return parse_config(
        f"""
storage: {{url: "sqlite:///{db_path}"}}
upstream:
  base_url: "{upstream_url}"
  timeout_s: 5
  accounts:
    {DEMO_ACCOUNT}: {{api_key: {DEMO_KEY}, polls_per_hour: 7200, max_concurrency: 2}}
polling: {{queued_interval_s: 3, processing_interval_s: 3, max_interval_s: 5, watch_ttl_h: 1}}
clients:
  demo-shop: {{token: {DEMO_TOKEN}, accounts: [demo], webhook_secrets: ["{secret}"]}}
delivery: {{timeout_s: 5, retry_schedule_s: [0.5, 1, 2], allowed_hosts: ["127.0.0.1"]}}
""",
        env={},
    )


async def _create_job(url: str, items: int, *, signals_url: str) -> str:
    images = [
        {"source_url": f"https://example.com/raw/sku-{n:02d}.jpg", "external_id": f"sku-{n:02d}"}
        for n in range(1, items + 1)
    ]
    body = {
        "images": images,
        "operation": "marketplace_clean",
        "preset": "marketplace_clean_catalog",
        "webhook_url": signals_url,  # the upstream's own signed webhooks, to the bridge
    }
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        response = await client.post(
            "/product-photo-jobs",
            json=body,
            headers={"Authorization": f"Bearer {DEMO_KEY}", "Idempotency-Key": "demo-job-0001"},
        )
        response.raise_for_status()
        return str(response.json()["job"]["id"])


async def _wait_until_done(
    api: httpx.AsyncClient, watch_id: str, receiver: Receiver
) -> dict[str, Any]:
    """Poll the bridge's own API until the watch ended and every delivery settled."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        watch = (await api.get(f"/v1/watches/{watch_id}")).json()["watch"]
        deliveries = (await api.get(f"/v1/watches/{watch_id}/deliveries")).json()["deliveries"]
        settled = all(d["status"] != "pending" for d in deliveries)
        if watch["status"] != "active" and settled and len(receiver.events) >= len(deliveries):
            return {"watch": watch, "deliveries": deliveries}
        await asyncio.sleep(0.2)
    raise TimeoutError(f"the demo job did not finish within {DEADLINE_S:.0f} s")


async def run_demo(*, items: int = 20, seconds_per_item: float = 0.4) -> int:
    """Run the demo; print events and a summary; return the exit code."""
    secret = new_secret()
    receiver = Receiver(secret)
    sim = create_simulator(
        SimulatorSettings(
            keys={DEMO_KEY: KeyLimits(polls_per_hour=7200, max_active_jobs=1)},
            queue_delay_s=1.0,
            seconds_per_item=seconds_per_item,
            failure_rate=0.15,
            seed=3,
        )
    )
    with tempfile.TemporaryDirectory(prefix="photo-bridge-demo-") as folder:
        async with serving(sim) as upstream, serving(receiver.app()) as hooks:
            config = demo_config(
                upstream_url=upstream.url, db_path=f"{folder}/demo.db", secret=secret
            )
            async with (
                serving(create_app(config)) as bridge,
                httpx.AsyncClient(
                    base_url=bridge.url,
                    headers={"Authorization": f"Bearer {DEMO_TOKEN}"},
                    timeout=10,
                ) as api,
            ):
                print(
                    f"photo-bridge demo: simulator {upstream.url}, bridge {bridge.url}, receiver {hooks.url}/hook"
                )
                signals_url = f"{bridge.url}/upstream/{DEMO_ACCOUNT}/signals"
                job_id = await _create_job(upstream.url, items, signals_url=signals_url)
                created = await api.post(
                    "/v1/watches",
                    json={
                        "job_id": job_id,
                        "webhook_url": f"{hooks.url}/hook",
                        "metadata": {"demo": "yes"},
                    },
                    headers={"Idempotency-Key": "demo-watch-1"},
                )
                created.raise_for_status()
                watch_id = created.json()["watch"]["id"]
                print(f"watching job {job_id} ({items} images) as {watch_id}\n")
                final = await _wait_until_done(api, watch_id, receiver)
                polled_soon = _polled_soon((await api.get("/metrics")).text)
                stats = sim.state.simulator.stats()
    return _summary(receiver, final, stats=stats, polled_soon=polled_soon)


def _polled_soon(metrics: str) -> int:
    """The verified upstream signals that brought a watched job's poll forward to now, from the
    bridge's /metrics (several signals between two polls share that one poll)."""
    return int(
        sum(
            sample.value
            for family in text_string_to_metric_families(metrics)
            if family.name == "bridge_upstream_signals"
            for sample in family.samples
            if sample.name.endswith("_total") and sample.labels.get("polled_soon") == "true"
        )
    )


def _summary(
    receiver: Receiver, final: dict[str, Any], *, stats: dict[str, Any], polled_soon: int
) -> int:
    deliveries = final["deliveries"]
    delivered = sum(1 for d in deliveries if d["status"] == "delivered")
    sequences = [e["data"]["sequence"] for e in receiver.events]
    in_order = sequences == list(range(1, len(sequences) + 1))
    job = final["watch"]["job"] or {}
    summary = {
        "watch_status": final["watch"]["status"],
        "job_status": job.get("status"),
        "images": {"completed": job.get("completed_items"), "failed": job.get("failed_items")},
        "events": len(receiver.events),
        "in_order_without_gaps": in_order,
        "deliveries": {"delivered": delivered, "dead": len(deliveries) - delivered},
        "signatures": {"verified": receiver.verified, "rejected": receiver.rejected},
        "duplicates_dropped": receiver.duplicates,
        "upstream_polls": stats["keys"][DEMO_KEY]["poll_count"],
        "upstream_429s": stats["keys"][DEMO_KEY]["rate_limited"],
        "upstream_signals": {
            "delivered": stats["webhooks"]["delivered"],
            "not_delivered": stats["webhooks"]["failed"],
            "polled_soon": polled_soon,  # the bridge made the job due at once (its /metrics)
            "polls_brought_forward": stats["webhooks"]["polls_after"],  # polls that followed one
        },
        "seconds": round(time.monotonic() - receiver.started, 1),
    }
    print("\nsummary: " + json.dumps(summary, indent=2))
    ok = (
        in_order
        and receiver.rejected == 0
        and stats["webhooks"]["failed"] == 0
        and delivered == len(deliveries)
        and summary["watch_status"] == "completed"
    )
    print("demo OK" if ok else "demo FAILED")
    return 0 if ok else 1
