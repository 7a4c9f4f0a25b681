"""An import told in Slack and email, end to end: the real poller over the simulator, the outbox,
the deliverer and the channels, on one fake clock; Slack is the stand-in, email is aiosmtpd.

The import is 30 jobs of 20 images (4 jobs at a time upstream, a second per image), some images
failing. Slack gets one message, edited at most once per `edit_interval_s` (10 s) of the clock.
"""

from __future__ import annotations

import contextlib
import csv
import email
import email.policy
import io
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from random import Random
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from bridge.config import Config, SlackChannelConfig, parse_config
from bridge.delivery.channels import Channel
from bridge.delivery.channels.registry import ChannelRegistry
from bridge.delivery.channels.slack import SlackChannel
from bridge.delivery.deliverer import Deliverer
from bridge.devtools.localserver import serving
from bridge.devtools.simulator import KeyLimits, Simulator, SimulatorSettings, create_simulator
from bridge.events.import_events import ImportEventPlanner
from bridge.events.routing import Router
from bridge.ops.metrics import Metrics
from bridge.polling.poller import Poller
from bridge.polling.pool import UpstreamPool
from bridge.rendering import Renderer
from bridge.store import Store, open_store
from bridge.store.tables import deliveries, delivery_attempts
from tests.clock import FakeClock
from tests.plugins.slack_standin import SlackStandin

KEY = "aigen_test_imports"
INTERVAL_S = 10


class Inbox:
    def __init__(self) -> None:
        self.received: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.received.append(parsed)  # type: ignore[arg-type]
        return "250 OK"


class _Controller(Controller):
    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@pytest.fixture
def inbox():
    box = Inbox()
    controller = _Controller(box, hostname="127.0.0.1", port=0)
    controller.start()
    yield box, controller.port
    controller.stop()


class UnpacedRegistry(ChannelRegistry):
    """The registry with Slack's one-call-a-second pacing off: the stand-in needs none, and the
    test's clock is fake while the pacer's is real."""

    def _slack(self, name: str, settings: SlackChannelConfig, renderer: Renderer) -> Channel:
        return SlackChannel(
            name=name,
            token=settings.token.get_secret_value(),
            channel=settings.channel,
            renderer=renderer,
            state=self._state,
            public_url=self._config.server.base_url,
            base_url=settings.base_url,
            timeout_s=self._config.delivery.timeout_s,
            min_interval_s=0.0,
            edit_interval_s=settings.edit_interval_s,
            failures=self._failures,
            now=self._now,
        )


@dataclass
class Rig:
    clock: FakeClock
    sim: Simulator
    store: Store
    poller: Poller
    deliverer: Deliverer
    planner: ImportEventPlanner

    async def start_import(self, *, jobs: int, images: int, name: str) -> tuple[str, list[str]]:
        """An import of `jobs` new upstream jobs, closed by its expected_jobs."""
        record, _ = await self.store.imports.create(
            client="shop",
            account="main",
            name=name,
            webhook_url=None,
            events=["*"],
            metadata={"season": "autumn"},
            expected_jobs=jobs,
            idempotency_key=None,
            now=self.clock.now(),
        )
        job_ids = []
        for j in range(jobs):
            skus = [f"sku-{j:02d}-{i:02d}" for i in range(images)]
            skus[0] = f"=cmd|{j:02d}" if j % 7 == 3 else skus[0]  # a formula, for the CSV
            job_ids.append(self.sim.create_job(KEY, total_items=images, external_ids=skus))
        await self.store.imports.add_jobs(
            import_id=record.id,
            client="shop",
            job_ids=job_ids,
            metadata={},
            now=self.clock.now(),
            ttl=timedelta(hours=48),
            planner=self.planner,
        )
        return record.id, job_ids

    async def run_until_ended(self, import_id: str, *, limit_s: float = 3600) -> float:
        """Poll and deliver each second of the clock until the import ended and every delivery
        is settled; returns the clock seconds it took."""
        started = self.clock.now()
        while (self.clock.now() - started).total_seconds() < limit_s:
            await self.poller.poll_due(self.clock.now())
            while await self.deliverer.deliver_due(self.clock.now()):
                pass
            record = await self.store.imports.get(import_id=import_id)
            assert record is not None
            if record.tally.ended and not await self.pending():
                return (self.clock.now() - started).total_seconds()
            self.clock.advance(1)
        raise AssertionError("the import did not end in time")

    async def pending(self) -> int:
        async with self.store.db.engine.connect() as conn:
            query = sa.select(sa.func.count()).where(deliveries.c.status == "pending")
            return int((await conn.execute(query)).scalar_one())

    def failed_skus(self, job_ids: list[str]) -> set[str]:
        return {
            item["external_id"]
            for job_id in job_ids
            for item in self.sim.peek(job_id)["items"]
            if item["status"] == "failed"
        }


def _config(sim_url: str, storage_url: str, *, channels: str, routes: str) -> Config:
    return parse_config(
        f"""
storage: {{url: "{storage_url}"}}
server: {{public_url: "https://bridge.example.com"}}
upstream:
  base_url: "{sim_url}"
  timeout_s: 2
  transport: httpx
  accounts:
    main: {{api_key: {KEY}, polls_per_hour: 36000, max_concurrency: 4}}
polling: {{queued_interval_s: 1, processing_interval_s: 1, max_interval_s: 5, watch_ttl_h: 48}}
clients:
  shop: {{token: shop-token-123, accounts: [main]}}
channels:
{channels}
routes:
{routes}
delivery: {{timeout_s: 5, retry_schedule_s: [1, 2, 4]}}
""",
        env={},
    )


@contextlib.asynccontextmanager
async def rig(storage_url: str, *, channels: str, routes: str) -> AsyncIterator[Rig]:
    clock = FakeClock()
    settings = SimulatorSettings(
        keys={KEY: KeyLimits(polls_per_hour=1_000_000, max_active_jobs=4)},
        max_active_jobs_per_account=4,
        queue_delay_s=2.0,
        seconds_per_item=1.0,
        failure_rate=0.05,
        seed=11,
        now=clock.now,
    )
    app = create_simulator(settings)
    async with serving(app) as server, httpx.AsyncClient() as http:
        config = _config(server.url, storage_url, channels=channels, routes=routes)
        store = await open_store(config.storage.url)
        router = Router.from_config(config)
        upstream = UpstreamPool(config)
        poller = Poller(
            store=store,
            upstream=upstream,
            accounts=config.upstream.accounts,
            polling=config.polling,
            router=router,
            timeout_s=config.upstream.timeout_s,
            metrics=Metrics(),
            now=clock.now,
            owner="test-replica",
            rng=Random(1),
        )
        registry = UnpacedRegistry(
            config=config,
            http=http,
            state=store.channel_state,
            renderer=Renderer(),
            now=clock.now,
            failures=store.imports,
        )
        deliverer = Deliverer(
            store=store,
            channels=registry,
            settings=config.delivery,
            metrics=Metrics(),
            now=clock.now,
            owner="test-replica",
            rng=Random(2),
        )
        await poller.start()
        try:
            yield Rig(clock, app.state.simulator, store, poller, deliverer, poller.imports)
        finally:
            await deliverer.aclose()
            await upstream.aclose()
            await store.close()


def texts(blocks: list[dict[str, Any]]) -> str:
    out = []
    for block in blocks:
        text = block.get("text")
        if isinstance(text, dict):
            out.append(text["text"])
        out += [f["text"] for f in block.get("fields") or []]
        out += [e["text"] for e in block.get("elements") or [] if "text" in e]
    return "\n".join(out)


def slack_channel(name: str, url: str, channel: str) -> str:
    return (
        f"  {name}: {{type: slack, token: xoxb-standin-token, channel: {channel},"
        f' base_url: "{url}", edit_interval_s: {INTERVAL_S}}}'
    )


@pytest.fixture
async def slack():
    standin = SlackStandin(channels=("C0IMPORT", "C0JOBS"))
    async with serving(standin.app) as server:
        standin.url = server.url
        yield standin


@pytest.mark.slow
async def test_import_of_30_jobs_is_one_slack_message_edited_at_most_once_per_interval(
    storage_url, slack
):
    """30 jobs x 20 images: one top-level message; chat.update at most once per 10 s of the
    clock, plus one. The run takes about 60 s of clock and some 685 sends: at most 7 edits
    allowed, 6 measured; the sends put off in between leave no attempt behind."""
    channels = slack_channel("catalog-slack", slack.api_url, "C0IMPORT")
    routes = '  - {events: ["*"], channels: [catalog-slack]}'
    async with rig(storage_url, channels=channels, routes=routes) as r:
        import_id, job_ids = await r.start_import(jobs=30, images=20, name="Autumn <cat> & co")
        took_s = await r.run_until_ended(import_id)
        record = await r.store.imports.get(import_id=import_id)
        async with r.store.db.engine.connect() as conn:
            attempts = (await conn.execute(sa.select(delivery_attempts.c.error))).all()
            statuses = (await conn.execute(sa.select(deliveries.c.status))).scalars().all()
        failed = r.failed_skus(job_ids)

    assert record is not None and record.tally.status == "partially_completed"
    assert failed, "the seed gives the import failed images"
    [posted] = slack.top_level()
    updates = slack.answered("chat.update")
    assert len(updates) <= math.ceil(took_s / INTERVAL_S) + 1, (len(updates), took_s)
    assert all(c.answer == "ok" for c in slack.calls)
    assert set(statuses) == {"delivered"}
    assert all(error is None for (error,) in attempts)  # nothing failed, nothing retried
    assert len(attempts) == len(statuses)  # one attempt each: putting off is not an attempt
    assert len(statuses) > 20 * len(updates)  # hundreds of events told in a handful of edits
    replies = slack.replies(posted.ts)
    told = "\n".join(texts(r.blocks) for r in replies if not r.reply_broadcast)
    assert all(sku in told for sku in failed)
    assert [r.reply_broadcast for r in replies].count(True) == 1
    t = record.tally
    final = texts(posted.blocks)
    assert "Import Autumn &lt;cat&gt; &amp; co" in final
    assert ":warning: *Partially completed*" in final
    assert "*Jobs done*\n30 of 30" in final
    assert f"*Images completed*\n{t.images_completed} of 600" in final
    assert f"*Failed*\n{t.images_failed}" in final and t.images_failed == len(failed)
    assert "*Pending*\n0" in final
    assert f"*Credits used*\n{t.credits_used}" in final
    print(  # noqa: T201
        f"chat.update: {len(updates)} over {took_s:.0f} s of clock for {len(statuses)} sends;"
        f" {len(replies)} replies; {len(failed)} failed images"
    )


async def test_a_group_by_job_route_keeps_one_message_per_job(storage_url, slack):
    channels = "\n".join(
        [
            slack_channel("imports-slack", slack.api_url, "C0IMPORT"),
            slack_channel("jobs-slack", slack.api_url, "C0JOBS"),
        ]
    )
    routes = "\n".join(
        [
            '  - {events: ["*"], channels: [imports-slack]}',
            '  - {events: ["job.*", "item.*"], channels: [jobs-slack], group_by: job}',
        ]
    )
    async with rig(storage_url, channels=channels, routes=routes) as r:
        import_id, _ = await r.start_import(jobs=3, images=4, name="Small")
        await r.run_until_ended(import_id)

    by_channel = {c: [m for m in slack.top_level() if m.channel == c] for c in slack.channels}
    assert len(by_channel["C0IMPORT"]) == 1
    assert len(by_channel["C0JOBS"]) == 3
    assert all("Product photo job" in m.text for m in by_channel["C0JOBS"])
    assert "Import Small" in by_channel["C0IMPORT"][0].text


async def test_import_summary_email_is_one_email_with_the_failures_csv(storage_url, inbox):
    box, port = inbox
    channels = (
        f"  ops-email: {{type: email, host: 127.0.0.1, port: {port}, starttls: false,"
        " from: bridge@example.com, to: [ops@example.com], mode: summary}"
    )
    routes = '  - {events: ["*"], channels: [ops-email]}'
    async with rig(storage_url, channels=channels, routes=routes) as r:
        import_id, _ = await r.start_import(jobs=8, images=10, name="Autumn <b>")
        await r.run_until_ended(import_id)
        expected = [
            (f.external_id, f.job_id, f.item_id, f.error_code, f.error_message)
            for f in await r.store.imports.failures(import_id=import_id, limit=1000)
        ]

    [mail] = box.received
    assert mail["Subject"] == "[photo-bridge] Import Autumn <b> (account main)"
    assert mail["Message-ID"].startswith(f"<import.{import_id}.ops-email.")
    html = mail.get_body(preferencelist=("html",)).get_content()
    assert "Autumn &lt;b&gt;" in html and "Autumn <b>" not in html
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_filename() == "failures.csv"
    rows = list(csv.reader(io.StringIO(attachment.get_content())))
    assert rows[0] == ["external_id", "job_id", "item_id", "error_code", "error_message"]
    assert len(rows) - 1 == len(expected) > 0
    for row, (external_id, *rest) in zip(rows[1:], expected, strict=True):
        defused = "'" + external_id if external_id.startswith("=") else external_id
        assert row == [defused, *[v or "" for v in rest]]


async def test_import_events_mode_emails_every_event_in_the_import_thread(storage_url, inbox):
    box, port = inbox
    channels = (
        f"  ops-email: {{type: email, host: 127.0.0.1, port: {port}, starttls: false,"
        " from: bridge@example.com, to: [ops@example.com], mode: events}"
    )
    routes = '  - {events: ["job.*", "import.*"], channels: [ops-email]}'
    async with rig(storage_url, channels=channels, routes=routes) as r:
        import_id, _ = await r.start_import(jobs=2, images=3, name="Small")
        await r.run_until_ended(import_id)

    types = [m["Message-ID"] for m in box.received]
    root = f"<import.{import_id}.ops-email."
    [opening] = [m for m in box.received if m["In-Reply-To"] is None]
    assert opening["Message-ID"].startswith(root) and len(set(types)) == len(types)
    assert all(m["References"] == opening["Message-ID"] for m in box.received if m is not opening)
    assert {m["Subject"] for m in box.received} == {"[photo-bridge] Import Small (account main)"}
    bodies = [m.get_body(preferencelist=("plain",)).get_content() for m in box.received]
    assert any("The import ended" in b for b in bodies)  # import.* events: the import's words
    assert sum("Product photo job" in b for b in bodies) >= 4  # each job's queued, ..., final
