"""PostgreSQL's pool pings a connection only when it sat idle (bridge.store.engine._ping_when_idle):
a connection the server dropped while it was idle is swapped for a fresh one before use, and one
used a moment ago is trusted without a round trip."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bridge.store import engine as engine_module
from bridge.store.engine import create_engine


async def _backend_pid(engine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _terminate(pg_url: str, pid: int) -> None:
    other = create_engine(pg_url)
    try:
        async with other.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await other.dispose()


async def test_an_idle_connection_the_server_dropped_is_replaced_before_use(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(pg_url)
    try:
        dropped = await _backend_pid(engine)
        await _terminate(pg_url, dropped)
        monkeypatch.setattr(engine_module, "IDLE_PING_S", 0.0)  # every checkout counts as idle
        assert await _backend_pid(engine) != dropped
    finally:
        await engine.dispose()


async def test_a_connection_used_a_moment_ago_is_not_pinged(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(pg_url)
    try:
        dropped = await _backend_pid(engine)
        await _terminate(pg_url, dropped)
        monkeypatch.setattr(engine_module, "IDLE_PING_S", 3600.0)  # never idle long enough
        with pytest.raises(DBAPIError) as raised:
            await _backend_pid(engine)  # no ping: the dropped connection is used, and fails
        assert raised.value.connection_invalidated
        assert await _backend_pid(engine) != dropped  # the pool renewed itself after that
    finally:
        await engine.dispose()
