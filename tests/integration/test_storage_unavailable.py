"""While PostgreSQL restarts, every API route that needs storage answers 503 storage_unavailable
with Retry-After, /readyz says so, and the bridge recovers by itself once the database is back."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator

import httpx
import pytest

from tests.integration.api_support import running_api
from tests.pgcluster import Cluster, ClusterUnavailable, PostgresServer, controlled_cluster

pytestmark = pytest.mark.postgres


@pytest.fixture
def own_cluster() -> Iterator[tuple[PostgresServer, Cluster]]:
    """A cluster of this test's own, which it may stop and start (the session's is shared)."""
    try:
        with controlled_cluster() as pair:
            yield pair
    except ClusterUnavailable as exc:
        pytest.skip(str(exc))


async def _until(
    call: Callable[[], Awaitable[httpx.Response]], done: Callable[[httpx.Response], bool]
) -> httpx.Response:
    """Call until the answer is done (a reload reaches each pooled session in turn), or 10 s."""
    deadline = time.monotonic() + 10
    while True:
        response = await call()
        if done(response) or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.05)


def _storage(response: httpx.Response) -> str:
    return str(response.json()["checks"]["storage"])


def _assert_unavailable(response: object) -> None:
    assert response.status_code == 503, response.text  # type: ignore[attr-defined]
    assert response.headers["Retry-After"] == "5"  # type: ignore[attr-defined]
    assert response.json()["error"]["code"] == "storage_unavailable"  # type: ignore[attr-defined]


async def test_api_answers_503_while_postgresql_restarts(
    own_cluster: tuple[PostgresServer, Cluster], caplog: pytest.LogCaptureFixture
) -> None:
    server, cluster = own_cluster
    url = server.create_database()
    async with running_api(url) as api:
        before = await api.create()
        assert before.status_code == 201
        watch_id = before.json()["watch"]["id"]
        cluster.stop(mode="fast")  # as `systemctl restart postgresql` does
        job_id = str(uuid.uuid4())
        with caplog.at_level(logging.ERROR, logger="bridge.api.middleware"):
            down = await api.create(job_id=job_id)
            listed = await api.http.get("/v1/watches", headers=api.auth())
            got = await api.http.get(f"/v1/watches/{watch_id}", headers=api.auth())
        ready_down = await api.http.get("/readyz")
        _assert_unavailable(down)
        _assert_unavailable(listed)
        _assert_unavailable(got)
        assert ready_down.status_code == 503
        assert ready_down.json()["checks"]["storage"] != "ok"
        logged = [r for r in caplog.records if r.getMessage() == "storage unavailable"]
        assert len(logged) == 3 and all(not r.exc_info for r in logged)  # one line each, no trace
        assert not [r for r in caplog.records if r.getMessage() == "unhandled error in request"]

        cluster.start(port=server.port)  # the same address: no restart of the bridge
        again = await api.create(job_id=job_id)
        ready = await api.http.get("/readyz")
        kept = await api.http.get(f"/v1/watches/{watch_id}", headers=api.auth())
    assert again.status_code == 201, again.text
    assert ready.json()["checks"]["storage"] == "ok"
    assert kept.status_code == 200


async def test_readyz_notices_a_postgresql_that_reads_but_cannot_write(
    own_cluster: tuple[PostgresServer, Cluster],
) -> None:
    server, _ = own_cluster
    url = server.create_database()
    async with running_api(url) as api:
        assert (await api.create()).status_code == 201
        # As after a failover to a standby: SELECT 1 still answers, every write is refused.
        server.psql("ALTER SYSTEM SET default_transaction_read_only = on")
        server.psql("SELECT pg_reload_conf()")
        try:
            ready = await _until(lambda: api.http.get("/readyz"), lambda r: _storage(r) != "ok")
            refused = await _until(api.create, lambda r: r.status_code != 201)
        finally:
            server.psql("ALTER SYSTEM RESET default_transaction_read_only")
            server.psql("SELECT pg_reload_conf()")
        back = await _until(lambda: api.http.get("/readyz"), lambda r: _storage(r) == "ok")
        again = await _until(api.create, lambda r: r.status_code == 201)
    assert ready.status_code == 503 and _storage(ready) == "read-only"
    _assert_unavailable(refused)
    assert _storage(back) == "ok"
    assert again.status_code == 201
