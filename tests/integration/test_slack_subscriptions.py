"""Slack channels subscribed through the Slack app, end to end: jobs on the upstream simulator,
polled and routed by a Poller whose router reads the stored subscriptions, delivered by a
Deliverer to the Slack Web API stand-in. A subscribed channel hears a job (or an import) exactly
as a route to it would: one message edited in place, failed images in its thread, once per change
however many watches and routes lead there, and nothing new once the channel muted it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from random import Random

import httpx
from sqlalchemy import func, select

from bridge.config import Config, parse_config
from bridge.delivery.channels.registry import ChannelRegistry
from bridge.delivery.deliverer import Deliverer
from bridge.devtools.localserver import serving
from bridge.devtools.simulator import KeyLimits, SimulatorSettings, create_simulator
from bridge.devtools.simulator.state import Simulator
from bridge.events.routing import Router
from bridge.events.subscriptions import SubscriptionBook, job_target
from bridge.ops.metrics import Metrics
from bridge.polling.poller import Poller
from bridge.polling.pool import UpstreamPool
from bridge.rendering import Renderer
from bridge.store import Store, open_store
from bridge.store.tables import deliveries, events
from tests.clock import FakeClock
from tests.plugins.slack_standin import Posted, SlackStandin

KEY = "aigen_test_slack_subscriptions"
ROUTED = "C0123456"  # the configured channel `catalog-slack` posts here
APP_ONLY = "C0999999"  # reached only through the Slack app's token
JOB_EVENTS = ["job.*", "item.failed"]  # few sends: the channel paces its calls a second apart


def _config(sim_url: str, db: str, slack: SlackStandin, routes: str) -> Config:
    return parse_config(
        f"""
storage: {{url: "{db}"}}
server: {{public_url: "https://bridge.example.com"}}
upstream:
  base_url: "{sim_url}"
  timeout_s: 2
  transport: httpx
  accounts:
    main: {{api_key: {KEY}, polls_per_hour: 36000, max_concurrency: 4}}
polling: {{queued_interval_s: 2, processing_interval_s: 2, max_interval_s: 10, watch_ttl_h: 48}}
clients:
  shop: {{token: shop-token-slack-subs, accounts: [main]}}
  erp: {{token: erp-token-slack-subs, accounts: [main]}}
channels:
  catalog-slack: {{type: slack, token: "{slack.token}", channel: {ROUTED}, base_url: "{slack.api_url}"}}
routes: {routes}
slack_app:
  signing_secret: standin-signing-secret
  token: "{slack.token}"
  base_url: "{slack.api_url}"
delivery: {{timeout_s: 5, retry_schedule_s: [1, 2], allowed_hosts: ["127.0.0.1"]}}
""",
        env={},
    )


@dataclass
class Bridge:
    """The parts of a running bridge a test drives by hand, one simulated second per step."""

    store: Store
    sim: Simulator
    slack: SlackStandin
    poller: Poller
    deliverer: Deliverer
    book: SubscriptionBook
    clock: FakeClock

    async def refresh(self) -> None:
        """What the runtime's "subscriptions" step does every 5 s."""
        self.book.replace(await self.store.subscriptions.current())

    async def subscribe(self, channel_id: str, kind: str, target: str, events=("*",)) -> None:
        await self.store.subscriptions.subscribe(
            team_id="T0STANDIN",
            channel_id=channel_id,
            kind=kind,
            target=target,
            account="main",
            events=list(events),
            created_by="U0TESTER",
            now=self.clock.now(),
        )
        await self.refresh()

    async def watch(self, job_id: str, *, client: str = "shop") -> str:
        record, _ = await self.store.watches.create(
            client=client,
            account="main",
            job_id=job_id,
            webhook_url=None,
            events=["*"],
            metadata={},
            idempotency_key=None,
            now=self.clock.now(),
            ttl=timedelta(hours=48),
        )
        return record.id

    async def step(self) -> None:
        await self.poller.poll_due(self.clock.now())
        await self.deliverer.deliver_due(self.clock.now())
        self.clock.advance(1)

    async def run_until(self, done: Callable[[], Awaitable[bool]], *, steps: int = 300) -> None:
        """Step until `done` and nothing is left to deliver (a deadline in simulated seconds)."""
        for _ in range(steps):
            await self.step()
            if await done() and not await self.pending():
                return
        raise AssertionError("the bridge never got there")

    async def ended(self) -> bool:
        page, _ = await self.store.watches.page(client=None, status="active", limit=1, cursor=None)
        return not page

    async def pending(self) -> int:
        return await self._count(
            select(func.count()).select_from(deliveries).where(deliveries.c.status == "pending")
        )

    async def deliveries_to(self, destination: str) -> int:
        query = select(func.count()).where(deliveries.c.destination == destination)
        return await self._count(query.select_from(deliveries))

    async def events_of(self, watch_id: str) -> int:
        query = select(func.count()).where(events.c.watch_id == watch_id)
        return await self._count(query.select_from(events))

    async def _count(self, query) -> int:
        async with self.store.db.engine.connect() as conn:
            return int((await conn.execute(query)).scalar() or 0)


@contextlib.asynccontextmanager
async def running(storage_url: str, *, routes: str = "[]") -> AsyncIterator[Bridge]:
    clock = FakeClock()
    slack = SlackStandin(channels=(ROUTED, APP_ONLY))
    sim_app = create_simulator(
        SimulatorSettings(
            keys={KEY: KeyLimits(polls_per_hour=100_000, max_active_jobs=50)},
            queue_delay_s=3.0,
            seconds_per_item=2.0,
            failure_rate=0.4,
            seed=5,
            now=clock.now,
        )
    )
    async with (
        serving(sim_app) as sim_server,
        serving(slack.app) as slack_server,
        httpx.AsyncClient(trust_env=False) as http,
    ):
        slack.url = slack_server.url
        config = _config(sim_server.url, storage_url, slack, routes)
        store = await open_store(storage_url)
        upstream = UpstreamPool(config)
        metrics = Metrics()
        book = SubscriptionBook(await store.subscriptions.current())
        poller = Poller(
            store=store,
            upstream=upstream,
            accounts=config.upstream.accounts,
            polling=config.polling,
            router=Router.from_config(config, book),
            timeout_s=config.upstream.timeout_s,
            metrics=metrics,
            now=clock.now,
            owner="slack-subs",
            rng=Random(1),
        )
        registry = ChannelRegistry(
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
            metrics=metrics,
            now=clock.now,
            owner="slack-subs",
            rng=Random(2),
        )
        try:
            await poller.start()
            yield Bridge(store, sim_app.state.simulator, slack, poller, deliverer, book, clock)
        finally:
            await deliverer.aclose()
            await upstream.aclose()
            await store.close()


def failed_items(sim: Simulator, job_id: str) -> int:
    return sum(1 for item in sim.peek(job_id)["items"] if item["status"] == "failed")


def final_status(sim: Simulator, job_id: str) -> str:
    """How the message's text names the job's final status ("Partially completed")."""
    return str(sim.peek(job_id)["status"]).replace("_", " ").capitalize()


def thread_replies(slack: SlackStandin, message: Posted) -> list[Posted]:
    """The replies listing failed images (the final broadcast left out)."""
    return [r for r in slack.replies(message.ts) if not r.reply_broadcast]


def buttons(message: Posted) -> list[tuple[str, str]]:
    """(action_id, value) of each button on the message."""
    return [
        (element["action_id"], element["value"])
        for block in message.blocks
        if block["type"] == "actions"
        for element in block["elements"]
    ]


def header(message: Posted) -> str:
    return message.blocks[0]["text"]["text"]


async def test_slack_subscription_to_an_account_gets_each_job_in_one_message(storage_url):
    async with running(storage_url) as bridge:
        await bridge.subscribe(APP_ONLY, "account", "main", JOB_EVENTS)
        jobs = [bridge.sim.create_job(KEY, total_items=n) for n in (3, 4)]
        watches = [await bridge.watch(job_id) for job_id in jobs]

        await bridge.run_until(bridge.ended)

        posted = bridge.slack.top_level()
        assert sum(failed_items(bridge.sim, job_id) for job_id in jobs) > 0  # replies were due
        assert len(posted) == 2 and {m.channel for m in posted} == {APP_ONLY}
        by_job = {job_id[:8]: job_id for job_id in jobs}
        for message in posted:
            job_id = by_job[header(message).split()[3]]  # "Product photo job 3f1c2b9a (...)"
            watch_id = watches[jobs.index(job_id)]
            assert message.edits >= 2  # posted queued, then processing, ..., the end
            assert final_status(bridge.sim, job_id) in message.text
            assert len(thread_replies(bridge.slack, message)) == failed_items(bridge.sim, job_id)
            assert buttons(message) == [
                ("show_failures", f"job:{watch_id}"),
                ("mute", f"job:{watch_id}"),
            ]
        assert await bridge.deliveries_to(f"slack-app:{APP_ONLY}") > 0
        assert {c.answer for c in bridge.slack.calls} == {"ok"}


ROUTE_TO_CATALOG = (
    '[{events: ["job.*", "item.failed"], accounts: [main], channels: [catalog-slack]}]'
)


async def test_slack_subscription_and_a_route_to_one_channel_tell_each_change_once(storage_url):
    async with running(storage_url, routes=ROUTE_TO_CATALOG) as bridge:
        await bridge.subscribe(ROUTED, "account", "main", ["*"])
        job_id = bridge.sim.create_job(KEY, total_items=4)
        first = await bridge.watch(job_id, client="shop")
        await bridge.watch(job_id, client="erp")

        await bridge.run_until(bridge.ended)

        [message] = bridge.slack.top_level()
        assert failed_items(bridge.sim, job_id) > 0
        sent = await bridge.deliveries_to("catalog-slack")
        # Every change of the job once (the subscription takes "*"), not once per watch or path.
        assert sent == await bridge.events_of(first)
        assert await bridge.deliveries_to(f"slack-app:{ROUTED}") == 0
        assert message.channel == ROUTED
        assert len(bridge.slack.answered("chat.update")) == sent - 1
        assert len(thread_replies(bridge.slack, message)) == failed_items(bridge.sim, job_id)
        assert buttons(message)[0] == ("show_failures", f"job:{first}")  # the app's own bot


async def test_slack_subscription_to_an_import_gets_the_import_in_one_message(tmp_path):
    async with running(f"sqlite:///{tmp_path}/bridge.db") as bridge:
        record, _ = await bridge.store.imports.create(
            client="shop",
            account="main",
            name="Autumn catalog",
            webhook_url=None,
            events=["*"],
            metadata={},
            expected_jobs=2,
            idempotency_key=None,
            now=bridge.clock.now(),
        )
        await bridge.subscribe(APP_ONLY, "import", record.id)
        jobs = [bridge.sim.create_job(KEY, total_items=n) for n in (3, 3)]
        await bridge.store.imports.add_jobs(
            import_id=record.id,
            client="shop",
            job_ids=jobs,
            metadata={},
            now=bridge.clock.now(),
            ttl=timedelta(hours=48),
            planner=bridge.poller.imports,
        )

        async def import_ended() -> bool:
            found = await bridge.store.imports.get(import_id=record.id)
            return found is not None and found.tally.ended

        await bridge.run_until(import_ended)

        [message] = bridge.slack.top_level()
        assert header(message) == "Import Autumn catalog"
        assert message.channel == APP_ONLY
        assert buttons(message) == [
            ("show_failures", f"import:{record.id}"),
            ("mute", f"import:{record.id}"),
        ]
        failed = sum(failed_items(bridge.sim, job_id) for job_id in jobs)
        assert 0 < failed < 6
        told = [int(r.text.split()[0]) for r in thread_replies(bridge.slack, message)]
        assert sum(told) == failed  # "2 images failed: ...": each failed image in one reply
        fields = [f["text"] for f in message.blocks[2]["fields"]]
        assert f"*Images completed*\n{6 - failed} of 6" in fields
        assert f"*Failed*\n{failed}" in fields


async def test_slack_subscription_muted_job_gets_no_new_message_or_edit(tmp_path):
    async with running(f"sqlite:///{tmp_path}/bridge.db") as bridge:
        await bridge.subscribe(APP_ONLY, "account", "main", JOB_EVENTS)
        muted = bridge.sim.create_job(KEY, total_items=4)
        await bridge.watch(muted)

        async def shown() -> bool:
            return len(bridge.slack.top_level()) == 1

        await bridge.run_until(shown)
        [message] = bridge.slack.top_level()
        await bridge.store.subscriptions.mute(
            channel_id=APP_ONLY,
            kind="job",
            target=job_target("main", muted),
            created_by="U0TESTER",
            now=bridge.clock.now(),
        )
        await bridge.refresh()
        edits, replies = message.edits, len(bridge.slack.replies(message.ts))
        heard = bridge.sim.create_job(KEY, total_items=2)  # another job: still heard
        await bridge.watch(heard)

        await bridge.run_until(bridge.ended)

        assert message.edits == edits and len(bridge.slack.replies(message.ts)) == replies
        [_, other] = bridge.slack.top_level()
        assert heard[:8] in header(other) and other.edits >= 1
