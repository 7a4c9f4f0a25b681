"""The throwaway-PostgreSQL fixtures give each test a real, private, empty database."""

from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.pgcluster import PostgresServer, find_bin_dir


async def _tables(url: str) -> list[str]:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    return sorted(r["tablename"] for r in rows)


@pytest.mark.parametrize("run", [1, 2])
async def test_pg_url_round_trips_rows_in_an_empty_database(pg_url: str, run: int) -> None:
    # Both runs create the same table: the second would fail if databases were shared or reused.
    assert await _tables(pg_url) == []
    conn = await asyncpg.connect(pg_url, timeout=10)
    try:
        await conn.execute("CREATE TABLE jobs (id int PRIMARY KEY, status text NOT NULL)")
        await conn.executemany(
            "INSERT INTO jobs VALUES ($1, $2)", [(1, "queued"), (2, f"run-{run}")]
        )
        rows = await conn.fetch("SELECT id, status FROM jobs ORDER BY id")
    finally:
        await conn.close()
    assert [tuple(r) for r in rows] == [(1, "queued"), (2, f"run-{run}")]


async def test_pg_url_databases_are_distinct(pg_url: str, postgres_server: PostgresServer) -> None:
    other = postgres_server.create_database()
    try:
        conn = await asyncpg.connect(pg_url, timeout=10)
        try:
            await conn.execute("CREATE TABLE only_here (x int)")
        finally:
            await conn.close()
        assert other != pg_url
        assert await _tables(pg_url) == ["only_here"]
        assert await _tables(other) == []
    finally:
        postgres_server.drop_database(other.rsplit("/", 1)[1])


async def test_pg_url_has_the_storage_url_shape(
    pg_url: str, postgres_server: PostgresServer
) -> None:
    url = make_url(pg_url)
    assert (url.drivername, url.username, url.password) == ("postgresql", "postgres", None)
    assert (url.host, url.port) == ("127.0.0.1", postgres_server.port)
    assert (
        postgres_server.admin_url
        == f"postgresql://postgres@127.0.0.1:{postgres_server.port}/postgres"
    )


async def test_postgres_server_drop_database_drops_it_despite_open_connections(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.create_database()
    name = url.rsplit("/", 1)[1]
    lingering = await asyncpg.connect(url, timeout=10)
    try:
        postgres_server.drop_database(name)
        listed = postgres_server.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{name}'")
    finally:
        await lingering.close()
    assert listed.strip() == "0"


async def test_storage_url_serves_each_backend(
    storage_url: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    backend = request.node.callspec.params["storage_url"]
    url = make_url(storage_url)
    assert url.get_backend_name() == backend
    if backend == "sqlite":
        assert storage_url == f"sqlite:///{tmp_path}/bridge.db"
    # What the app does with storage.url: swap in the async driver and connect.
    driver = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}[backend]
    engine = create_async_engine(url.set(drivername=driver))
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE watches (id text PRIMARY KEY)"))
            await conn.execute(text("INSERT INTO watches VALUES ('w1')"))
        async with engine.connect() as conn:
            ids = (await conn.execute(text("SELECT id FROM watches"))).scalars().all()
    finally:
        await engine.dispose()
    assert ids == ["w1"]


def test_find_bin_dir_honours_pg_bin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "initdb").write_text("")
    monkeypatch.setenv("PG_BIN", str(tmp_path))
    assert find_bin_dir() == tmp_path
    monkeypatch.setenv("PG_BIN", str(tmp_path / "missing"))
    assert find_bin_dir() is None


def test_find_bin_dir_prefers_version_15_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PG_BIN", raising=False)
    installed = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not installed:
        assert find_bin_dir() is None
        return
    found = find_bin_dir()
    assert found is not None and (found / "initdb") in installed
    if Path("/usr/lib/postgresql/15/bin/initdb").is_file():
        assert found == Path("/usr/lib/postgresql/15/bin")
