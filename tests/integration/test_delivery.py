"""Delivery against a real Standard Webhooks receiver on 127.0.0.1, with a fake clock for retries."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from random import Random
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bridge.config import Config
from bridge.delivery import signing
from bridge.delivery.channels import Message, SendResult
from bridge.delivery.channels.registry import ChannelRegistry
from bridge.delivery.deliverer import Deliverer
from bridge.devtools.localserver import serving
from bridge.ops.metrics import Metrics
from bridge.store import Store, open_store
from bridge.store.busy import Busy
from bridge.store.outbox import EXCERPT_CHARS, AttemptResult
from bridge.store.tables import upstream_jobs, watches
from tests.clock import FakeClock
from tests.integration.delivery_support import signed_by
from tests.integration.outbox_rows import add_events, add_watch
from tests.ports import free_port

Answer = int | tuple[int, dict[str, str]] | str  # a status, a status with headers, or "stall"


@dataclass
class Hit:
    webhook_id: str
    body: bytes
    headers: dict[str, str]
    verified: list[bool]  # one verdict per receiver secret


@dataclass
class Receiver:
    """A webhook endpoint that verifies every request with the `standardwebhooks` package."""

    secrets: list[str]
    url: str = ""
    hits: list[Hit] = field(default_factory=list)
    answers: dict[str, list[Answer]] = field(default_factory=dict)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    delay_s: float = 0.0

    def answer(self, event_id: str, *answers: Answer) -> None:
        """Answer the next requests for `event_id` so, then 200."""
        self.answers.setdefault(event_id, []).extend(answers)

    def ids(self) -> list[str]:
        return [hit.webhook_id for hit in self.hits]

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers)
        verified = [signed_by(secret, body, headers) for secret in self.secrets]
        hit = Hit(headers.get("webhook-id", ""), body, headers, verified)
        self.hits.append(hit)
        if not any(verified):
            return PlainTextResponse("bad signature", status_code=401)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)  # a receiver that takes its time, not synchronisation
        queued = self.answers.get(hit.webhook_id)
        answer: Answer = queued.pop(0) if queued else 200
        if answer == "stall":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.release.wait(), timeout=5)
            return PlainTextResponse("too late")
        status, extra = answer if isinstance(answer, tuple) else (answer, {})
        assert isinstance(status, int)
        return PlainTextResponse(f"answer {status}", status_code=status, headers=extra)


def make_config(
    secrets: list[str],
    *,
    schedule: tuple[float, ...] = (5, 300, 1800),
    channels: dict[str, Any] | None = None,
    timeout_s: float = 0.5,
) -> Config:
    return Config.model_validate(
        {
            "upstream": {"accounts": {"main": {"api_key": "aigen_test_delivery"}}},
            "clients": {
                "shop": {"token": "shop-token", "accounts": ["main"], "webhook_secrets": secrets}
            },
            "channels": channels or {},
            "delivery": {
                "timeout_s": timeout_s,
                "retry_schedule_s": list(schedule),
                "allowed_hosts": ["127.0.0.1"],
            },
        }
    )


def deliverer_for(
    config: Config,
    store: Store,
    registry: ChannelRegistry,
    clock: FakeClock,
    owner: str,
    rng: Random,
    metrics: Metrics,
) -> Deliverer:
    return Deliverer(
        store=store,
        channels=registry,
        settings=config.delivery,
        metrics=metrics,
        now=clock.now,
        owner=owner,
        rng=rng,
    )


@dataclass
class Rig:
    store: Store
    clock: FakeClock
    receiver: Receiver
    config: Config
    http: httpx.AsyncClient
    metrics: Metrics
    deliverer: Deliverer

    @property
    def hook_url(self) -> str:
        return self.receiver.url + "/hook"

    def new_deliverer(self, owner: str, *, store: Store | None = None) -> Deliverer:
        store = store or self.store
        registry = ChannelRegistry(
            config=self.config, http=self.http, state=store.channel_state, renderer=None
        )
        return deliverer_for(
            self.config, store, registry, self.clock, owner, Random(7), self.metrics
        )

    async def drive(self, deliverer: Deliverer | None = None, *, limit: int = 200) -> int:
        """Run delivery rounds until nothing is due; return the attempts made."""
        total = 0
        for _ in range(100):
            tried = await (deliverer or self.deliverer).deliver_due(limit=limit)
            if tried == 0:
                return total
            total += tried
        raise AssertionError("delivery never ran dry")

    async def watch_with_events(self, count: int, **kw: Any) -> tuple[Any, list[str]]:
        watch = await add_watch(self.store, at=self.clock.now(), webhook_url=self.hook_url)
        return watch, await add_events(self.store, watch, count=count, at=self.clock.now(), **kw)

    async def delivery(self, watch_id: str, sequence: int = 1, destination: str = "webhook_url"):
        for d in await self.store.watches.deliveries(watch_id=watch_id):
            if d.sequence == sequence and d.destination == destination:
                return d
        raise AssertionError(f"no delivery {sequence} to {destination}")


@contextlib.asynccontextmanager
async def make_rig(url: str, *, secrets: int = 1, **config_kw: Any) -> AsyncIterator[Rig]:
    keys = [signing.new_secret() for _ in range(secrets)]
    receiver = Receiver(secrets=keys)
    app = Starlette(routes=[Route("/hook", receiver.hook, methods=["POST"])])
    config = make_config(keys, **config_kw)
    store = await open_store(url)
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    try:
        async with serving(app) as server, httpx.AsyncClient(trust_env=False) as http:
            receiver.url = server.url
            metrics = Metrics()
            registry = ChannelRegistry(
                config=config, http=http, state=store.channel_state, renderer=None
            )
            deliverer = deliverer_for(config, store, registry, clock, "r1", Random(1), metrics)
            try:
                yield Rig(store, clock, receiver, config, http, metrics, deliverer)
            finally:
                receiver.release.set()
                await deliverer.aclose()
    finally:
        await store.close()


@pytest.fixture
async def rig(tmp_path) -> AsyncIterator[Rig]:
    async with make_rig(f"sqlite:///{tmp_path}/bridge.db") as made:
        yield made


async def test_deliver_due_sends_signed_webhooks_in_order(storage_url):
    async with make_rig(storage_url) as rig:
        watch, event_ids = await rig.watch_with_events(2)
        assert await rig.deliverer.deliver_due() == 1  # event 2 waits for event 1
        assert await rig.deliverer.deliver_due() == 1
        assert await rig.deliverer.deliver_due() == 0

        assert rig.receiver.ids() == event_ids
        for hit, event_id in zip(rig.receiver.hits, event_ids, strict=True):
            assert hit.verified == [True]
            assert hit.headers["content-type"] == "application/json"
            assert hit.headers["user-agent"].startswith("photo-bridge/")
            assert hit.headers["webhook-signature"].startswith("v1,")
            assert json.loads(hit.body)["data"]["event_id"] == event_id
        first = await rig.delivery(watch.id)
        assert (first.status, first.attempts, first.last_status_code) == ("delivered", 1, 200)
        assert first.delivered_at == rig.clock.now()
        assert (first.next_attempt_at, first.last_error) == (None, None)
        [attempt] = await rig.store.outbox.attempts(delivery_id=first.id)
        assert (attempt.status_code, attempt.error, attempt.response_excerpt) == (
            200,
            None,
            "answer 200",
        )
        assert attempt.duration_ms > 0
        samples = rig.metrics.registry.get_sample_value
        labels = {"kind": "webhook", "result": "delivered"}
        assert samples("bridge_delivery_attempts_total", labels) == 2
        assert samples("bridge_delivery_seconds_count") == 2


async def test_deliver_due_retries_500_on_the_schedule(storage_url):
    async with make_rig(storage_url) as rig:
        watch, [event_id] = await rig.watch_with_events(1)
        rig.receiver.answer(event_id, 500)
        start = rig.clock.now()
        assert await rig.deliverer.deliver_due() == 1
        failed = await rig.delivery(watch.id)
        assert (failed.status, failed.attempts, failed.last_status_code) == ("pending", 1, 500)
        assert failed.last_error == "HTTP 500"
        assert start + timedelta(seconds=5) <= failed.next_attempt_at
        assert failed.next_attempt_at <= start + timedelta(seconds=5.5)

        rig.clock.advance(4.9)
        assert await rig.deliverer.deliver_due() == 0
        rig.clock.advance(0.7)
        assert await rig.deliverer.deliver_due() == 1
        assert rig.receiver.ids() == [event_id, event_id]
        done = await rig.delivery(watch.id)
        assert (done.status, done.attempts, done.last_status_code) == ("delivered", 2, 200)
        attempts = await rig.store.outbox.attempts(delivery_id=done.id)
        assert [a.status_code for a in attempts] == [500, 200]


async def test_deliver_due_honours_a_longer_retry_after(rig):
    watch, [event_id] = await rig.watch_with_events(1)
    rig.receiver.answer(event_id, (429, {"retry-after": "120"}))
    start = rig.clock.now()
    await rig.drive()
    limited = await rig.delivery(watch.id)
    assert (limited.status, limited.last_status_code) == ("pending", 429)
    assert limited.next_attempt_at == start + timedelta(seconds=120)
    rig.clock.advance(60)
    assert await rig.drive() == 0
    rig.clock.advance(60)
    assert await rig.drive() == 1
    assert (await rig.delivery(watch.id)).status == "delivered"


@pytest.mark.parametrize("retry_after", ["86400", "date"])
async def test_deliver_due_caps_retry_after_at_the_schedule_plus_two_hours(rig, retry_after):
    watch, [event_id] = await rig.watch_with_events(1)
    if retry_after == "date":  # an HTTP date a day from now
        retry_after = format_datetime(datetime.now(UTC) + timedelta(days=1), usegmt=True)
    rig.receiver.answer(event_id, (503, {"retry-after": retry_after}))
    start = rig.clock.now()
    await rig.drive()
    parked = await rig.delivery(watch.id)
    assert (parked.status, parked.last_status_code) == ("pending", 503)
    assert parked.next_attempt_at == start + timedelta(seconds=5 + 2 * 3600)


async def test_deliver_due_retries_a_timeout(rig):
    watch, [event_id] = await rig.watch_with_events(1)
    rig.receiver.answer(event_id, "stall")
    await rig.drive()
    slow = await rig.delivery(watch.id)
    assert (slow.status, slow.attempts, slow.last_status_code) == ("pending", 1, None)
    assert "timeout" in slow.last_error
    [attempt] = await rig.store.outbox.attempts(delivery_id=slow.id)
    assert attempt.duration_ms >= 400
    rig.clock.advance(6)
    assert await rig.drive() == 1
    assert (await rig.delivery(watch.id)).status == "delivered"


async def test_deliver_due_retries_a_refused_connection(rig):
    watch = await add_watch(
        rig.store, at=rig.clock.now(), webhook_url=f"http://127.0.0.1:{free_port()}/hook"
    )
    await add_events(rig.store, watch, count=1, at=rig.clock.now())
    assert await rig.drive() == 1
    refused = await rig.delivery(watch.id)
    assert (refused.status, refused.attempts, refused.last_status_code) == ("pending", 1, None)
    assert refused.last_error.startswith("connection error")


async def test_deliver_due_gives_up_at_once_on_410_and_moves_on(rig):
    watch, [first, second] = await rig.watch_with_events(2)
    rig.receiver.answer(first, 410)
    assert await rig.drive() == 2
    gone = await rig.delivery(watch.id, 1)
    assert (gone.status, gone.attempts, gone.last_status_code) == ("dead", 1, 410)
    assert gone.next_attempt_at is None
    assert rig.receiver.ids() == [first, second]
    assert (await rig.delivery(watch.id, 2)).status == "delivered"


async def test_deliver_due_is_dead_after_the_schedule(tmp_path):
    async with make_rig(f"sqlite:///{tmp_path}/b.db", schedule=(1, 2)) as rig:
        watch, [event_id] = await rig.watch_with_events(1)
        rig.receiver.answer(event_id, 500, 503, 500, 200)
        for _ in range(3):
            assert await rig.drive() == 1
            rig.clock.advance(3)
        assert await rig.drive() == 0
        dead = await rig.delivery(watch.id)
        assert (dead.status, dead.attempts, dead.last_status_code) == ("dead", 3, 500)
        assert dead.next_attempt_at is None
        attempts = await rig.store.outbox.attempts(delivery_id=dead.id)
        assert [a.status_code for a in attempts] == [500, 503, 500]
        assert rig.receiver.ids() == [event_id] * 3


async def test_deliver_due_holds_later_events_while_the_receiver_fails(rig):
    watch, ids = await rig.watch_with_events(3)
    other, other_ids = await rig.watch_with_events(2)
    rig.receiver.answer(ids[0], 500, 503)
    await rig.drive()
    # The failing watch is stuck at event 1; the other watch is not held up by it.
    assert rig.receiver.ids() == [ids[0], other_ids[0], other_ids[1]]
    for _ in range(2):
        rig.clock.advance(400)
        await rig.drive()
    assert rig.receiver.ids()[3:] == [ids[0], ids[0], ids[1], ids[2]]
    statuses = [d.status for d in await rig.store.watches.deliveries(watch_id=watch.id)]
    assert statuses == ["delivered"] * 3
    assert [d.status for d in await rig.store.watches.deliveries(watch_id=other.id)] == [
        "delivered"
    ] * 2


async def test_deliver_due_signs_with_every_secret_during_rotation(tmp_path):
    async with make_rig(f"sqlite:///{tmp_path}/b.db", secrets=2) as rig:
        await rig.watch_with_events(1)
        await rig.drive()
        [hit] = rig.receiver.hits
        assert hit.verified == [True, True]
        assert len(hit.headers["webhook-signature"].split(" ")) == 2


async def test_deliver_due_sends_to_named_channels_and_kills_unknown_ones(tmp_path, caplog):
    erp_secret = signing.new_secret()
    async with make_rig(f"sqlite:///{tmp_path}/b.db") as rig:
        # The receiver knows the ERP channel's secret too; the client's webhook is not involved.
        rig.receiver.secrets.append(erp_secret)
        channels = {"erp": {"type": "webhook", "url": rig.hook_url, "secret": erp_secret}}
        config = make_config(rig.receiver.secrets[:1], channels=channels)
        rig.config = config
        deliverer = rig.new_deliverer("r2")
        watch = await add_watch(rig.store, at=rig.clock.now(), webhook_url=None)
        await add_events(
            rig.store, watch, count=1, at=rig.clock.now(), destinations=["erp", "gone"]
        )
        with caplog.at_level(logging.ERROR, logger="bridge.delivery.deliverer"):
            assert await rig.drive(deliverer) == 2
        [hit] = rig.receiver.hits
        assert hit.verified == [False, True]
        assert (await rig.delivery(watch.id, destination="erp")).status == "delivered"
        # A channel gone from the config is a dead end (CONTRACT s.6): dead at once, said loudly.
        gone = await rig.delivery(watch.id, destination="gone")
        assert (gone.status, gone.attempts) == ("dead", 1)
        assert gone.last_error == "channel 'gone' is no longer configured"
        [logged] = [r for r in caplog.records if r.getMessage() == "delivery dead"]
        assert logged.levelno == logging.ERROR
        dead = {"kind": "unknown", "result": "dead"}
        assert rig.metrics.registry.get_sample_value("bridge_delivery_attempts_total", dead) == 1
        await deliverer.aclose()


async def test_deliver_due_resends_the_same_event_id_after_a_restart(tmp_path):
    url = f"sqlite:///{tmp_path}/restart.db"
    async with make_rig(url) as rig:
        watch, [first, second] = await rig.watch_with_events(2)
        rig.receiver.answer(first, 500)
        assert await rig.drive() == 1
        # A crash while event 2 of another watch is in flight: its lease names a dead replica.
        crashed, [orphan] = await rig.watch_with_events(1)
        [claimed] = await rig.store.outbox.claim_due(
            now=rig.clock.now(), owner="crashed", lease_s=60, limit=10
        )
        assert claimed.event_id == orphan
        await rig.store.close()

        rig.store = await open_store(url)
        deliverer = rig.new_deliverer("after-restart")
        rig.clock.advance(10)
        assert await rig.drive(deliverer) == 2  # event 1 again, then event 2; the orphan is leased
        rig.clock.advance(60)
        assert await rig.drive(deliverer) == 1
        assert rig.receiver.ids() == [first, first, second, orphan]
        assert [h.verified for h in rig.receiver.hits] == [[True]] * 4
        for watch_id in (watch.id, crashed.id):
            statuses = {d.status for d in await rig.store.watches.deliveries(watch_id=watch_id)}
            assert statuses == {"delivered"}
        await deliverer.aclose()
        await rig.store.close()


async def test_deliver_due_never_sends_a_row_twice_from_several_replicas(pg_url):
    # A generous timeout: on a loaded machine a 0.5 s one expired mid-send now and then, and the
    # retry (5 s later) fell outside the test; the point here is claims racing, not timeouts.
    async with make_rig(pg_url, timeout_s=5.0) as rig:
        rig.receiver.delay_s = 0.005
        expected: dict[str, list[str]] = {}
        for _ in range(20):
            watch, ids = await rig.watch_with_events(3)
            expected[watch.id] = ids
        stores = [await open_store(pg_url, run_migrations=False) for _ in range(2)]
        replicas = [rig.deliverer] + [
            rig.new_deliverer(f"r{n}", store=store) for n, store in enumerate(stores, 2)
        ]
        try:
            # Small batches make many claims that race; the first replica also races itself.
            rounds = [rig.drive(r, limit=4) for r in [*replicas, rig.deliverer]]
            total = await asyncio.gather(*rounds)
            assert await rig.drive(replicas[1]) == 0
        finally:
            for replica in replicas[1:]:
                await replica.aclose()
            for store in stores:
                await store.close()
        all_ids = [i for ids in expected.values() for i in ids]
        assert sum(total) == len(all_ids)
        assert sorted(rig.receiver.ids()) == sorted(all_ids)  # each exactly once
        order = {event_id: n for n, event_id in enumerate(rig.receiver.ids())}
        for ids in expected.values():
            assert [order[i] for i in ids] == sorted(order[i] for i in ids)


async def test_deliver_due_skips_cancelled_watches(rig):
    watch, _ = await rig.watch_with_events(2)
    async with rig.store.db.engine.begin() as conn:
        await conn.execute(
            update(watches).where(watches.c.id == watch.id).values(status="cancelled")
        )
    assert await rig.drive() == 0
    assert rig.receiver.hits == []


async def test_claim_due_deliveries_carries_the_event_watch_and_job(rig):
    watch, [event_id] = await rig.watch_with_events(1)
    snapshot = {"id": watch.job_id, "status": "processing", "items": []}
    async with rig.store.db.engine.begin() as conn:
        await conn.execute(
            update(upstream_jobs)
            .where(upstream_jobs.c.job_id == watch.job_id)
            .values(snapshot=snapshot)
        )
    [row] = await rig.store.outbox.claim_due(now=rig.clock.now(), owner="me", lease_s=30, limit=5)
    assert (row.event_id, row.sequence, row.attempts, row.destination) == (
        event_id,
        1,
        0,
        "webhook_url",
    )
    assert (row.client, row.account, row.job_id) == ("shop", "main", watch.job_id)
    assert row.webhook_url == rig.hook_url
    assert row.payload["data"]["event_id"] == event_id
    assert row.event_type == "job.processing"
    assert row.job == snapshot
    # Leased: nobody gets it again until the lease ends.
    assert (
        await rig.store.outbox.claim_due(now=rig.clock.now(), owner="other", lease_s=30, limit=5)
        == []
    )
    later = rig.clock.now() + timedelta(seconds=31)
    [again] = await rig.store.outbox.claim_due(now=later, owner="other", lease_s=30, limit=5)
    assert again.id == row.id


async def test_record_attempts_leaves_a_delivery_leased_to_another_owner(rig):
    watch, _ = await rig.watch_with_events(1)
    now = rig.clock.now()
    [row] = await rig.store.outbox.claim_due(now=now, owner="slow", lease_s=1, limit=1)
    later = now + timedelta(seconds=2)
    await rig.store.outbox.claim_due(now=later, owner="fast", lease_s=30, limit=1)
    result = AttemptResult(
        delivery_id=row.id,
        attempted_at=now,
        duration_ms=1500.0,
        status="delivered",
        status_code=200,
        response_excerpt="x" * 5000,
    )
    await rig.store.outbox.record_attempts([result], now=later, owner="slow")
    still = await rig.delivery(watch.id)
    assert (still.status, still.attempts) == ("pending", 0)
    [attempt] = await rig.store.outbox.attempts(delivery_id=row.id)  # what happened is recorded
    assert len(attempt.response_excerpt) == EXCERPT_CHARS
    await rig.store.outbox.record_attempts([result], now=later, owner="fast")
    assert (await rig.delivery(watch.id)).status == "delivered"


class Broken:
    async def send(self, message: Message) -> SendResult:
        raise KeyError("bug")


class BrokenRegistry(ChannelRegistry):
    def for_destination(self, destination, *, webhook_url, client):
        return Broken()


async def test_deliver_due_logs_a_channel_bug_and_retries(rig, caplog):
    watch, _ = await rig.watch_with_events(1)
    registry = BrokenRegistry(
        config=rig.config, http=rig.http, state=rig.store.channel_state, renderer=None
    )
    deliverer = deliverer_for(
        rig.config, rig.store, registry, rig.clock, "r9", Random(9), rig.metrics
    )
    with caplog.at_level(logging.ERROR, logger="bridge.delivery.deliverer"):
        assert await deliverer.deliver_due() == 1
    [record] = [r for r in caplog.records if r.name == "bridge.delivery.deliverer"]
    assert record.exc_info is not None
    broken = await rig.delivery(watch.id)
    assert (broken.status, broken.attempts) == ("pending", 1)
    assert broken.last_error == "internal error in channel: KeyError"


async def test_deliverer_aclose_stops_new_rounds(rig):
    await rig.watch_with_events(1)
    await rig.deliverer.aclose()
    assert await rig.deliverer.deliver_due() == 0
    assert rig.receiver.hits == []


async def until(condition, *, timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.005)


async def test_deliver_due_does_not_resend_a_row_still_in_flight_after_its_lease(rig):
    watch, [event_id] = await rig.watch_with_events(1)
    rig.receiver.answer(event_id, "stall")
    first = asyncio.create_task(rig.deliverer.deliver_due())
    await until(lambda: rig.receiver.hits)
    rig.clock.advance(3600)  # the lease has run out by the store's clock; the send has not ended
    assert await rig.deliverer.deliver_due() == 0
    assert await first == 1
    assert rig.receiver.ids() == [event_id]
    assert (await rig.delivery(watch.id)).attempts == 1


async def test_dispatch_due_keeps_each_watch_in_order_while_sends_overlap(rig):
    stalled, stalled_ids = await rig.watch_with_events(3)
    moving, moving_ids = await rig.watch_with_events(3)
    rig.receiver.answer(stalled_ids[0], "stall")

    def arrived(event_ids):  # first arrivals: a send that timed out may come again
        return list(dict.fromkeys(i for i in rig.receiver.ids() if i in event_ids))

    async with asyncio.timeout(10):
        while arrived(moving_ids) != moving_ids:  # no round waits for the stalled send
            await rig.deliverer.dispatch_due()
            await asyncio.sleep(0.01)
    assert arrived(stalled_ids) == stalled_ids[:1]  # event 2 waits while event 1 is in flight
    rig.receiver.release.set()
    rig.clock.advance(6)  # should the stalled send have timed out, its retry is due
    async with asyncio.timeout(10):
        while arrived(stalled_ids) != stalled_ids:
            await rig.deliverer.dispatch_due()
            await asyncio.sleep(0.01)

    async def statuses() -> set[str]:
        rows = [
            d for w in (stalled, moving) for d in await rig.store.watches.deliveries(watch_id=w.id)
        ]
        return {d.status for d in rows}

    async with asyncio.timeout(10):  # the last result is recorded just after it arrives
        while await statuses() != {"delivered"}:
            await asyncio.sleep(0.01)


async def test_claim_due_passes_over_busy_destinations(storage_url):
    async with make_rig(storage_url) as rig:
        now = rig.clock.now()
        urls = [
            "http://127.0.0.1:8/a",
            "http://127.0.0.1:8?b",
            "http://127.0.0.1:8",
            "http://127.0.0.1:80/a",  # not on port 8, although its URL starts the same
            "http://127.0.0.2:8/a",
        ]
        for url in urls:
            watch = await add_watch(rig.store, at=now, webhook_url=url)
            await add_events(rig.store, watch, count=1, at=now, destinations=("webhook_url", "ops"))
        busy = Busy(channels=frozenset({"ops"}), origins=frozenset({"http://127.0.0.1:8"}))
        claimed = await rig.store.outbox.claim_due(
            now=now, owner="me", lease_s=30, limit=50, busy=busy
        )
        assert sorted(c.webhook_url for c in claimed) == urls[3:]
        assert {c.destination for c in claimed} == {"webhook_url"}
        # `admit` chooses among the rows read; those it refuses are not leased.
        admitted = await rig.store.outbox.claim_due(
            now=now, owner="me", lease_s=30, limit=50, admit=lambda c: c.destination == "ops"
        )
        assert len(admitted) == len(urls)
        assert {c.destination for c in admitted} == {"ops"}
        rest = await rig.store.outbox.claim_due(now=now, owner="me", lease_s=30, limit=50)
        assert sorted(c.webhook_url for c in rest) == sorted(urls[:3])
