"""Configured channels hear each change of a job once, however many watches it has (CONTRACT s. 6).

The whole bridge runs (API, poller, deliverer) against the simulator; two clients watch the same
job, each with its own webhook; a route sends every event of the account to an operator webhook,
a Slack channel (the stand-in) and an email channel (aiosmtpd). Each of those hears each change
once, and each client's webhook still gets every event of its own watch.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
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
from tests.plugins.slack_standin import SlackStandin

KEY = "aigen_test_once"
ITEMS = 6
DEADLINE_S = 60.0


@dataclass
class Hook:
    """A webhook receiver that verifies every signature and keeps what it got, by path."""

    secrets: dict[str, str]
    got: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    rejected: int = 0

    async def receive(self, request: Request) -> Response:
        name = request.path_params["name"]
        try:
            payload = Webhook(self.secrets[name]).verify(
                await request.body(), dict(request.headers)
            )
        except Exception:
            self.rejected += 1
            return Response(status_code=400)
        self.got.setdefault(name, []).append({**payload, "id": request.headers["webhook-id"]})
        return Response(status_code=204)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{name}", self.receive, methods=["POST"])])


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


def _config(*, db: Path, upstream: str, hooks: str, slack: str, smtp_port: int, secrets) -> Config:
    return parse_config(
        f"""
storage: {{url: "sqlite:///{db}"}}
upstream:
  base_url: "{upstream}"
  timeout_s: 5
  accounts:
    main: {{api_key: {KEY}, polls_per_hour: 7200, max_concurrency: 2}}
polling: {{queued_interval_s: 0.5, processing_interval_s: 0.3, max_interval_s: 1, watch_ttl_h: 1}}
clients:
  shop: {{token: shop-token, accounts: [main], webhook_secrets: ["{secrets["shop"]}"]}}
  other: {{token: other-token, accounts: [main], webhook_secrets: ["{secrets["other"]}"]}}
operators:
  ops: {{token: ops-token-0123456789abcdef}}
channels:
  erp: {{type: webhook, url: "{hooks}/erp", secret: "{secrets["erp"]}"}}
  catalog-slack: {{type: slack, token: xoxb-standin-token, channel: C0123456, base_url: "{slack}"}}
  ops-email: {{type: email, host: 127.0.0.1, port: {smtp_port}, starttls: false,
               from: bridge@example.com, to: [ops@example.com], mode: events}}
routes:
  - {{events: ["*"], accounts: [main], channels: [erp, catalog-slack, ops-email]}}
delivery: {{timeout_s: 5, retry_schedule_s: [0.2, 0.5, 1], allowed_hosts: ["127.0.0.1"]}}
""",
        env={},
    )


async def _settled(api: httpx.AsyncClient, watch_ids: list[str]) -> None:
    """Wait until every watch ended and none of its deliveries is pending."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        done = True
        for watch_id in watch_ids:
            watch = (await api.get(f"/v1/watches/{watch_id}")).json()["watch"]
            rows = (await api.get(f"/v1/watches/{watch_id}/deliveries")).json()["deliveries"]
            done &= watch["status"] != "active" and all(d["status"] != "pending" for d in rows)
        if done:
            return
        await asyncio.sleep(0.2)
    raise AssertionError("the job did not end and settle in time")


async def _channels_settled(api: httpx.AsyncClient) -> None:
    """Wait until no configured channel has a pending delivery (the operator sees them all)."""
    auth = {"Authorization": "Bearer ops-token-0123456789abcdef"}
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        channels = (await api.get("/v1/ops/channels", headers=auth)).json()["channels"]
        if all(c["pending"] == 0 for c in channels):
            return
        await asyncio.sleep(0.2)
    raise AssertionError("the configured channels did not settle in time")


async def _polled(api: httpx.AsyncClient, watch_id: str, *, token: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    auth = {"Authorization": f"Bearer {token}"}
    while time.monotonic() < deadline:
        watch = (await api.get(f"/v1/watches/{watch_id}", headers=auth)).json()["watch"]
        if watch["last_polled_at"] is not None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the watch was not polled in time")


def _change(event: dict[str, Any]) -> tuple[str, str | None]:
    item = event["data"]["item"] or {}
    return event["type"], item.get("id")


async def test_two_watches_on_one_job_reach_each_configured_channel_once(tmp_path, inbox):
    box, smtp_port = inbox
    secrets = {name: new_secret() for name in ("shop", "other", "erp")}
    hook = Hook(secrets)
    slack = SlackStandin()
    sim = create_simulator(
        SimulatorSettings(
            keys={KEY: KeyLimits(polls_per_hour=7200, max_active_jobs=2)},
            queue_delay_s=0.5,
            seconds_per_item=0.3,
            failure_rate=0.34,
            seed=5,
        )
    )
    async with (
        serving(sim) as upstream,
        serving(hook.app()) as hooks,
        serving(slack.app) as slack_server,
    ):
        slack.url = slack_server.url
        config = _config(
            db=tmp_path / "bridge.db",
            upstream=upstream.url,
            hooks=hooks.url,
            slack=slack.api_url,
            smtp_port=smtp_port,
            secrets=secrets,
        )
        job_id = sim.state.simulator.create_job(
            KEY, total_items=ITEMS, external_ids=[f"sku-{n}" for n in range(ITEMS)]
        )
        async with (
            serving(create_app(config)) as bridge,
            httpx.AsyncClient(base_url=bridge.url, timeout=10) as api,
        ):
            watch_ids = []
            for client in ("shop", "other"):
                created = await api.post(
                    "/v1/watches",
                    json={"job_id": job_id, "webhook_url": f"{hooks.url}/{client}"},
                    headers={"Authorization": f"Bearer {client}-token"},
                )
                assert created.status_code == 201, created.text
                watch_ids.append(created.json()["watch"]["id"])
                # The second watch comes once the first has been polled: it catches up on its
                # first poll with changes the channels already heard of.
                await _polled(api, watch_ids[-1], token=f"{client}-token")
            api.headers["Authorization"] = "Bearer shop-token"
            await _settled(api, watch_ids[:1])
            api.headers["Authorization"] = "Bearer other-token"
            await _settled(api, watch_ids[1:])
            await _channels_settled(api)

    assert hook.rejected == 0
    job = sim.state.simulator.peek(job_id)
    failed = {i["id"] for i in job["items"] if i["status"] == "failed"}
    assert failed, "the seed gives the job failed images"

    # Each client's own webhook gets every event of its own watch, numbered without gaps.
    for client, watch_id in zip(("shop", "other"), watch_ids, strict=True):
        got = hook.got[client]
        assert {e["data"]["watch_id"] for e in got} == {watch_id}
        assert [e["data"]["sequence"] for e in got] == list(range(1, len(got) + 1))

    # The operator webhook hears each change of the job once, in order, under one event id each.
    erp = hook.got["erp"]
    changes = [_change(e) for e in erp]
    assert len(changes) == len(set(changes)), Counter(changes).most_common(3)
    assert len({e["id"] for e in erp}) == len(erp)
    assert {c for c in changes if c[0] == "item.failed"} == {("item.failed", i) for i in failed}
    assert changes[-1][0].startswith("job.")
    # ... and a change both watches saw is told as the oldest watch's event.
    first_watch_changes = {_change(e) for e in hook.got["shop"]}
    assert all(
        e["data"]["watch_id"] == watch_ids[0] for e in erp if _change(e) in first_watch_changes
    )

    # Slack: one message for the job, one thread reply per failed image.
    [message] = slack.top_level()
    replies = [r for r in slack.replies(message.ts) if not r.reply_broadcast]
    assert len(replies) == len(failed)

    # Email: one email per change, all in one thread.
    assert len(box.received) == len(erp)
    roots = {
        m["References"].split()[0] if m["References"] else m["Message-ID"] for m in box.received
    }
    assert len(roots) == 1
