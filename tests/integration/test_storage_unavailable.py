"""While PostgreSQL restarts, every API route that needs storage answers 503 storage_unavailable
with Retry-After, /readyz says so, and the bridge recovers by itself once the database is back."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

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
