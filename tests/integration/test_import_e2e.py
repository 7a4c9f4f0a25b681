"""An import of a few jobs on the upstream simulator, end to end: polled, rolled up, and its events
delivered, signed, in order to the import's webhook_url and once each to a webhook channel."""

from __future__ import annotations

import json
from datetime import timedelta
from random import Random

import httpx
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.routing import Route

from bridge.config import parse_config
from bridge.delivery import signing
from bridge.delivery.channels.registry import ChannelRegistry
from bridge.delivery.deliverer import Deliverer
from bridge.devtools.localserver import serving
from bridge.devtools.simulator import KeyLimits, SimulatorSettings, create_simulator
from bridge.events.routing import Router
from bridge.ops.metrics import Metrics
from bridge.polling.poller import Poller
from bridge.polling.pool import UpstreamPool
from bridge.store import Store, open_store
from bridge.store.tables import deliveries
from tests.clock import FakeClock
from tests.integration.test_delivery import Receiver
from tests.integration.test_import_stalls import STALL_AFTER_S

KEY = "aigen_test_imports_e2e"
IMPORT_KEYS = {
    "id", "name", "account", "status", "closed", "expected_jobs", "jobs", "images",
    "credits_used", "rate_images_per_hour", "eta", "stalled", "webhook_url", "events",
    "metadata", "created_at", "updated_at", "ended_at",
}  # fmt: skip
JOB_KEYS = {"total", "active", "completed", "partially_completed", "failed", "cancelled"}
IMAGE_KEYS = {"total", "completed", "failed", "pending"}
FINAL = ("import.completed", "import.partially_completed", "import.failed")


def _config(sim_url: str, db: str, *, client_secret: str, channel_secret: str, hook: str):
    return parse_config(
        f"""
storage: {{url: "{db}"}}
upstream:
  base_url: "{sim_url}"
  timeout_s: 2
  transport: httpx
  accounts:
    main: {{api_key: {KEY}, polls_per_hour: 36000, max_concurrency: 4}}
polling: {{queued_interval_s: 2, processing_interval_s: 2, max_interval_s: 10, watch_ttl_h: 48}}
clients:
  shop: {{token: shop-token-imports, accounts: [main], webhook_secrets: ["{client_secret}"]}}
channels:
  ops-hook: {{type: webhook, url: "{hook}", secret: "{channel_secret}"}}
routes:
  - {{events: ["import.*"], channels: [ops-hook]}}
delivery: {{timeout_s: 2, retry_schedule_s: [1, 2], allowed_hosts: ["127.0.0.1"]}}
imports: {{stall_after_s: {STALL_AFTER_S}}}
""",
        env={},
    )


def _bodies(receiver: Receiver, path_secret: int) -> list[dict]:
    """The verified bodies the receiver got, first arrivals only, in arrival order."""
    seen: set[str] = set()
    out = []
    for hit in receiver.hits:
        assert hit.verified[path_secret], "a request that does not verify"
        if hit.webhook_id not in seen:
            seen.add(hit.webhook_id)
            out.append(json.loads(hit.body))
    return out


async def test_an_import_on_the_simulator_tells_its_webhook_and_a_channel_in_order(storage_url):
    clock = FakeClock()
    client_secret, channel_secret = signing.new_secret(), signing.new_secret()
    own = Receiver(secrets=[client_secret])
    channel = Receiver(secrets=[channel_secret])
    sim_app = create_simulator(
        SimulatorSettings(
            keys={KEY: KeyLimits(polls_per_hour=100_000, max_active_jobs=50)},
            queue_delay_s=3.0,
            seconds_per_item=2.0,
            failure_rate=0.25,
            seed=11,
            now=clock.now,
        )
    )
    hooks = Starlette(
        routes=[
            Route("/own", own.hook, methods=["POST"]),
            Route("/channel", channel.hook, methods=["POST"]),
        ]
    )
    async with (
        serving(sim_app) as sim_server,
        serving(hooks) as hook_server,
        httpx.AsyncClient(trust_env=False) as http,
    ):
        config = _config(
            sim_server.url,
            storage_url,
            client_secret=client_secret,
            channel_secret=channel_secret,
            hook=f"{hook_server.url}/channel",
        )
        store = await open_store(storage_url)
        upstream = UpstreamPool(config)
        metrics = Metrics()
        poller = Poller(
            store=store,
            upstream=upstream,
            accounts=config.upstream.accounts,
            polling=config.polling,
            router=Router.from_config(config),
            timeout_s=config.upstream.timeout_s,
            metrics=metrics,
            now=clock.now,
            owner="e2e",
            rng=Random(1),
        )
        registry = ChannelRegistry(
            config=config, http=http, state=store.channel_state, renderer=None
        )
        deliverer = Deliverer(
            store=store,
            channels=registry,
            settings=config.delivery,
            metrics=metrics,
            now=clock.now,
            owner="e2e",
            rng=Random(2),
        )
        try:
            await poller.start()
            sim = sim_app.state.simulator
            jobs = [sim.create_job(KEY, total_items=n) for n in (3, 4, 5)]
            record, _ = await store.imports.create(
                client="shop",
                account="main",
                name="Autumn catalog",
                webhook_url=f"{hook_server.url}/own",
                events=["import.*"],
                metadata={"batch": "autumn"},
                expected_jobs=3,
                idempotency_key=None,
                now=clock.now(),
            )
            await store.imports.add_jobs(
                import_id=record.id,
                client="shop",
                job_ids=jobs,
                metadata={},
                now=clock.now(),
                ttl=timedelta(hours=48),
                planner=poller.imports,
            )
            for _ in range(300):  # simulated seconds, one step each: a deadline, not a sleep
                await poller.poll_due(clock.now())
                await deliverer.deliver_due(clock.now())
                clock.advance(1)
                ended = await store.imports.get(import_id=record.id)
                assert ended is not None
                if ended.tally.ended and not await _pending(store):
                    break
            else:
                raise AssertionError("the import never ended and delivered")
        finally:
            await deliverer.aclose()
            await upstream.aclose()
            await store.close()

    bodies = _bodies(own, 0)
    types = [b["type"] for b in bodies]
    assert types[0] == "import.started" and types[-1] in FINAL
    assert set(types[1:-1]) <= {"import.progress"} and 1 <= types.count("import.progress") <= 9
    assert [b["data"]["sequence"] for b in bodies] == list(range(1, len(bodies) + 1))
    done = bodies[-1]["data"]["import"]
    for body in bodies:
        data = body["data"]
        assert data["import_id"] == record.id and data["metadata"] == {"batch": "autumn"}
        view = data["import"]
        assert set(view) == IMPORT_KEYS
        assert set(view["jobs"]) == JOB_KEYS and set(view["images"]) == IMAGE_KEYS
        assert view["id"] == record.id and view["name"] == "Autumn catalog"
    assert done["status"] == types[-1].split(".", 1)[1] and done["closed"]
    assert done["jobs"]["total"] == 3 and done["jobs"]["active"] == 0
    assert done["images"]["total"] == 12 and done["images"]["pending"] == 0
    assert done["images"]["completed"] + done["images"]["failed"] == 12
    assert done["ended_at"] is not None and done["eta"] is None
    progress = [b["data"]["import"]["images"] for b in bodies if b["type"] == "import.progress"]
    shares = [(p["completed"] + p["failed"]) * 10 // p["total"] for p in progress]
    assert shares == sorted(set(shares))  # each passes a further tenth

    # The channel routing import.* hears each import event once, and nothing else.
    heard = _bodies(channel, 0)
    assert len(channel.hits) == len(heard) == len(bodies)
    assert sorted(b["data"]["event_id"] for b in heard) == sorted(
        b["data"]["event_id"] for b in bodies
    )


async def _pending(store: Store) -> bool:
    async with store.db.engine.connect() as conn:
        row = (
            await conn.execute(select(deliveries.c.id).where(deliveries.c.status == "pending"))
        ).first()
    return row is not None
