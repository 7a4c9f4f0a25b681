"""Throwaway PostgreSQL for tests: one cluster per session, one empty database per test.

Tests that need PostgreSQL request `pg_url` (or `storage_url`, which runs them on SQLite and
PostgreSQL both, or `store`, a Store opened on it); they skip, saying why, when the binaries are
not installed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bridge.store import Store, open_store
from tests.pgcluster import ClusterUnavailable, PostgresServer, running_cluster

POSTGRES_FIXTURES = frozenset({"postgres_server", "pg_url"})


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """Start a throwaway PostgreSQL cluster for the session; skip if it is not installed."""
    try:
        with running_cluster() as server:
            yield server
    except ClusterUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh empty database for this test, as `postgresql://postgres@127.0.0.1:PORT/DB`."""
    url = postgres_server.create_database()
    try:
        yield url
    finally:
        postgres_server.drop_database(url.rsplit("/", 1)[1])


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A storage URL for each backend: a SQLite file in tmp_path, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/bridge.db"
    # Requested only here, so SQLite runs never start a cluster; skips when PostgreSQL is absent.
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
async def store(storage_url: str) -> AsyncIterator[Store]:
    """A Store opened (and migrated) on each backend's storage URL, closed after the test."""
    opened = await open_store(storage_url)
    try:
        yield opened
    finally:
        await opened.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs PostgreSQL `postgres`, so `-m "not postgres"` leaves them out."""
    for item in items:
        if POSTGRES_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)
