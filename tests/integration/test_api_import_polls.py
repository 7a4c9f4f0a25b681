"""An import made over the API, its jobs polled for real from the simulator: a closed import ends
when its jobs have, with its events in order and its failures listed and in the CSV."""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from bridge.app import create_app
from bridge.config import Config, parse_config
from bridge.devtools.localserver import serving
from bridge.devtools.simulator import KeyLimits, Simulator, SimulatorSettings, create_simulator
from bridge.events.routing import Router
from bridge.ops.metrics import Metrics
from bridge.polling.poller import Poller
from bridge.polling.pool import UpstreamPool
from bridge.store import Store, open_store
from tests.clock import FakeClock
from tests.integration.api_support import NOW

KEY = "aigen_test_import_polls"
SHOP = "shop-token-import-polls"
OPS = "ops-token-import-polls-01"
IMAGES = 4


@dataclass
class Bridge:
    clock: FakeClock
    sim: Simulator
    store: Store
    poller: Poller
    http: httpx.AsyncClient

    def auth(self, token: str = SHOP) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async def poll_until(self, done: Any, *, seconds: int) -> None:
        """Poll what is due each fake second until `done()` holds; fail after `seconds`."""
        for _ in range(seconds):
            if await done():
                return
            await self.poller.poll_due(self.clock())
            self.clock.advance(seconds=1)
        raise AssertionError(f"not done after {seconds} fake seconds")

    async def imported(self, import_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/v1/imports/{import_id}", headers=self.auth())
        assert response.status_code == 200
        return dict(response.json()["import"])


def _config(sim_url: str, storage_url: str) -> Config:
    return parse_config(
        f"""
storage: {{url: "{storage_url}"}}
upstream:
  base_url: "{sim_url}"
  timeout_s: 2
  transport: httpx
  accounts:
    main: {{api_key: {KEY}, polls_per_hour: 36000, max_concurrency: 4}}
polling: {{queued_interval_s: 2, processing_interval_s: 2, max_interval_s: 10}}
clients:
  shop: {{token: {SHOP}, accounts: [main]}}
operators:
  ops: {{token: {OPS}}}
""",
        env={},
    )


@contextlib.asynccontextmanager
async def bridge(storage_url: str) -> AsyncIterator[Bridge]:
    clock = FakeClock(NOW)
    sim_app = create_simulator(
        SimulatorSettings(
            keys={KEY: KeyLimits(polls_per_hour=100_000, max_active_jobs=10)},
            queue_delay_s=2.0,
            seconds_per_item=3.0,
            failure_rate=0.4,
            seed=3,
            now=clock,
        )
    )
    async with serving(sim_app) as sim_server:
        config = _config(sim_server.url, storage_url)
        store = await open_store(config.storage.url)
        upstream = UpstreamPool(config)
        poller = Poller(
            store=store,
            upstream=upstream,
            accounts=config.upstream.accounts,
            polling=config.polling,
            router=Router.from_config(config),
            timeout_s=config.upstream.timeout_s,
            metrics=Metrics(),
            now=clock,
            owner="import-polls",
        )
        app = create_app(config, store=store, now=clock, background=False)
        await poller.start()
        try:
            async with serving(app) as api, httpx.AsyncClient(base_url=api.url) as http:
                yield Bridge(clock, sim_app.state.simulator, store, poller, http)
        finally:
            await upstream.aclose()
            await store.close()


async def test_api_closed_import_ends_when_its_polled_jobs_have(storage_url: str) -> None:
    async with bridge(storage_url) as b:
        created = await b.http.post("/v1/imports", json={"name": "Fall catalog"}, headers=b.auth())
        import_id = created.json()["import"]["id"]
        jobs = [
            b.sim.create_job(KEY, total_items=IMAGES, external_ids=[f"{n}-{i}" for i in range(4)])
            for n in ("a", "b")
        ]
        added = await b.http.post(
            f"/v1/imports/{import_id}/jobs", json={"job_ids": jobs}, headers=b.auth()
        )
        assert added.status_code == 201

        async def started() -> bool:
            return (await b.imported(import_id))["status"] == "running"

        await b.poll_until(started, seconds=60)
        closed = await b.http.post(f"/v1/imports/{import_id}/close", headers=b.auth())
        assert closed.json()["import"]["closed"] is True
        assert closed.json()["import"]["ended_at"] is None  # its jobs are still running

        async def ended() -> bool:
            return (await b.imported(import_id))["ended_at"] is not None

        await b.poll_until(ended, seconds=300)
        final = await b.imported(import_id)
        bodies = [b.sim.peek(job_id) for job_id in jobs]
        failed = [(body["id"], item) for body in bodies for item in body["items"]
                  if item["status"] != "completed"]  # fmt: skip
        completed = 2 * IMAGES - len(failed)
        assert final["images"] == {
            "total": 2 * IMAGES,
            "completed": completed,
            "failed": len(failed),
            "pending": 0,
        }
        assert final["jobs"]["active"] == 0 and final["jobs"]["total"] == 2
        # The simulator's seed fails some images and completes others.
        assert failed and completed
        assert final["status"] == "partially_completed"

        events = await b.store.watches.events(watch_id=import_id)
        assert [e.sequence for e in events] == list(range(1, len(events) + 1))
        types = [e.type for e in events]
        assert types[0] == "import.started"
        assert types[-1] == f"import.{final['status']}"
        assert set(types[1:-1]) <= {"import.progress"}

        listed = await b.http.get(f"/v1/imports/{import_id}/failures", headers=b.auth())
        found = {(f["job_id"], f["external_id"]) for f in listed.json()["failures"]}
        assert found == {(job_id, item["external_id"]) for job_id, item in failed}
        text = (
            await b.http.get(f"/v1/imports/{import_id}/failures?format=csv", headers=b.auth())
        ).text
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        assert {(r["job_id"], r["external_id"]) for r in rows} == found
        ops = await b.http.get(f"/v1/ops/imports/{import_id}/failures", headers=b.auth(OPS))
        assert ops.json() == listed.json()
        late = await b.http.post(
            f"/v1/imports/{import_id}/jobs", json={"job_ids": jobs[:1]}, headers=b.auth()
        )
        assert late.status_code == 201  # a job already in it returns its watch, even now
