"""PostgreSQL's pool pings a connection only when it sat idle (bridge.store.engine._ping_when_idle):
a connection the server dropped while it was idle is swapped for a fresh one before use, and one
used a moment ago is trusted without a round trip."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.store import engine as engine_module
from bridge.store import open_store
from bridge.store.engine import create_engine
from bridge.store.outbox import AttemptResult
from tests.integration.outbox_rows import add_events, add_watch


async def _backend_pid(engine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


@contextlib.asynccontextmanager
async def _pooled_connection_dropped(pg_url: str) -> AsyncIterator[tuple[AsyncEngine, int]]:
    """An engine whose one pooled connection the server has just terminated, and its pid."""
    engine = create_engine(pg_url)
    try:
        dropped = await _backend_pid(engine)
        await _terminate(pg_url, f"pid = {dropped}")
        yield engine, dropped
    finally:
        await engine.dispose()


async def _terminate(pg_url: str, which: str) -> None:
    other = create_engine(pg_url)
    try:
        async with other.connect() as conn:
            await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    f" WHERE datname = current_database() AND pid <> pg_backend_pid() AND {which}"
                )
            )
    finally:
        await other.dispose()


async def test_an_idle_connection_the_server_dropped_is_replaced_before_use(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _pooled_connection_dropped(pg_url) as (engine, dropped):
        monkeypatch.setattr(engine_module, "IDLE_PING_S", 0.0)  # every checkout counts as idle
        assert await _backend_pid(engine) != dropped


async def test_a_connection_used_a_moment_ago_is_not_pinged(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _pooled_connection_dropped(pg_url) as (engine, dropped):
        monkeypatch.setattr(engine_module, "IDLE_PING_S", 3600.0)  # never idle long enough
        with pytest.raises(DBAPIError) as raised:
            await _backend_pid(engine)  # no ping: the dropped connection is used, and fails
        assert raised.value.connection_invalidated
        assert await _backend_pid(engine) != dropped  # the pool renewed itself after that


async def test_record_attempts_retries_once_on_a_connection_lost_since_its_last_use(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sent webhooks whose record met a dropped connection are recorded on a fresh one, not
    left to be sent again when their leases end."""
    at = datetime.now(UTC).replace(microsecond=0)
    store = await open_store(pg_url)
    try:
        watch = await add_watch(store, at=at, webhook_url="https://hooks.example/in")
        await add_events(store, watch, count=1, at=at)
        [row] = await store.outbox.claim_due(now=at, owner="me", lease_s=30, limit=1)
        await _terminate(pg_url, "true")  # every pooled connection of the store, used a moment ago
        monkeypatch.setattr(engine_module, "IDLE_PING_S", 3600.0)  # so none is pinged first
        done = AttemptResult(row.id, at, 3.0, "delivered", status_code=200)
        await store.outbox.record_attempts([done], now=at, owner="me")
        [delivery] = await store.watches.deliveries(watch_id=watch.id)
        assert (delivery.status, delivery.attempts) == ("delivered", 1)
    finally:
        await store.close()
