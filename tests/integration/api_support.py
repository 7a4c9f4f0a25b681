"""Shared pieces for the watches API tests: a config, a fake DNS, a running app and seeded rows."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from starlette.applications import Starlette

from bridge.api.ratelimit import RateLimiter
from bridge.app import create_app
from bridge.config import Config, parse_config
from bridge.devtools.localserver import serving
from bridge.ids import new_id
from bridge.store import Store, open_store
from bridge.store.tables import deliveries, events
from tests.clock import FakeClock

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
TOKENS = {
    "shop": "shop-token-0001",
    "studio": "studio-token-0002",
    "bare": "bare-token-0003",
    "ops": "ops-token-0004-operator",  # an operator, not a client
}
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
CONFIG = """
storage: {{url: "{url}"}}
upstream:
  accounts:
    main: {{api_key: aigen_test_main}}
    second: {{api_key: aigen_test_second}}
clients:
  shop: {{token: {shop}, accounts: [main], webhook_secrets: ["{whsec}"]}}
  studio: {{token: {studio}, accounts: [main, second], webhook_secrets: ["{whsec}"]}}
  bare: {{token: {bare}, accounts: [main]}}
operators:
  ops: {{token: {ops}}}
channels:
  ops-hook: {{type: webhook, url: "https://hooks.example.com/ops", secret: "{whsec}"}}
  catalog-slack: {{type: slack, token: xoxb-api-support, channel: C0123456}}
delivery: {{allowed_hosts: ["127.0.0.1:9000"]}}
"""
DNS = {
    "hooks.example.com": ["93.184.215.14"],
    "internal.example.com": ["192.168.1.1"],
    "mixed.example.com": ["93.184.215.14", "10.1.2.3"],
}


async def fake_resolve(host: str, port: int) -> list[str]:
    """DNS from the table above; anything else does not exist."""
    if host not in DNS:
        raise OSError(f"no such host {host}")
    return DNS[host]


@dataclass
class Api:
    """A running bridge API and an HTTP client for it."""

    url: str
    app: Starlette
    http: httpx.AsyncClient
    store: Store
    clock: FakeClock = field(default_factory=FakeClock)

    def auth(self, client: str = "shop", **headers: str) -> dict[str, str]:
        """Headers with the client's (or the operator "ops"'s) bearer token, and extra headers."""
        return {"Authorization": f"Bearer {TOKENS[client]}", **headers}

    async def create(
        self, client: str = "shop", *, headers: dict[str, Any] | None = None, **body: Any
    ) -> httpx.Response:
        """POST /v1/watches; job_id defaults to a fresh UUID."""
        body.setdefault("job_id", str(uuid.uuid4()))
        return await self.http.post(
            "/v1/watches", json=body, headers={**self.auth(client), **(headers or {})}
        )


def config_for(storage_url: str) -> Any:
    text = CONFIG.format(url=storage_url, whsec=WHSEC, **TOKENS)
    return parse_config(text, env={})


@contextlib.asynccontextmanager
async def running_api(
    storage_url: str,
    *,
    background: bool = False,
    rate_limiter: RateLimiter | None = None,
    store: Callable[[Store], Store] | None = None,
    edit_config: Callable[[Config], Config] | None = None,
) -> AsyncIterator[Api]:
    """Serve the bridge API on loopback with an injected clock and DNS.

    `background=False` leaves polling and delivery to the test (and /readyz says so); `store`
    wraps the opened store, to make storage fail on purpose; `edit_config` changes the config.
    """
    clock = FakeClock(NOW)
    config = config_for(storage_url)
    if edit_config is not None:
        config = edit_config(config)
    opened = await open_store(config.storage.url)
    used = store(opened) if store else opened
    app = create_app(
        config,
        store=used,
        now=clock,
        resolve=fake_resolve,
        background=background,
        rate_limiter=rate_limiter,
    )
    try:
        async with (
            serving(app) as server,
            httpx.AsyncClient(base_url=server.url, timeout=10) as http,
        ):
            yield Api(url=server.url, app=app, http=http, store=used, clock=clock)
    finally:
        await opened.close()


async def seed_event(
    store: Store,
    *,
    watch_id: str,
    sequence: int,
    destinations: dict[str, str],
    at: datetime = NOW,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Store one event of the watch, made `at`, and a delivery per destination with the given
    status; ids sort by when they were made, as the bridge's do.

    Returns the event payload and {destination: delivery id}.
    """
    event_id = new_id("evt")
    payload = {
        "type": "job.processing",
        "timestamp": "2026-11-28T12:00:00Z",
        "data": {"event_id": event_id, "watch_id": watch_id, "sequence": sequence},
    }
    ids = {name: new_id("dlv") for name in destinations}
    async with store.db.engine.begin() as conn:
        await conn.execute(
            events.insert().values(
                id=event_id,
                watch_id=watch_id,
                sequence=sequence,
                type=payload["type"],
                payload=payload,
                created_at=at,
            )
        )
        for name, status in destinations.items():
            await conn.execute(
                deliveries.insert().values(
                    id=ids[name],
                    event_id=event_id,
                    watch_id=watch_id,
                    sequence=sequence,
                    stream=f"watch:{watch_id}",
                    position=sequence,
                    destination=name,
                    status=status,
                    attempts=8 if status == "dead" else 1,
                    next_attempt_at=None if status != "pending" else at,
                    last_status_code=500 if status == "dead" else 200,
                    last_error="HTTP 500" if status == "dead" else None,
                    lease_owner="worker-1" if status == "dead" else None,
                    lease_expires_at=at if status == "dead" else None,
                    created_at=at,
                    updated_at=at,
                    delivered_at=at if status == "delivered" else None,
                )
            )
    return payload, ids
