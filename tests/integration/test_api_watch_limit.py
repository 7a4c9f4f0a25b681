"""clients.NAME.max_active_watches: one more active watch is a 429 watch_limit_reached."""

from __future__ import annotations

import asyncio
import uuid

from bridge.config import Config
from tests.integration.api_support import running_api


def _cap(limit: int):
    def edit(config: Config) -> Config:
        clients = {
            name: client.model_copy(update={"max_active_watches": limit})
            for name, client in config.clients.items()
        }
        return config.model_copy(update={"clients": clients})

    return edit


async def test_api_watch_limit_counts_active_watches_per_client(storage_url):
    async with running_api(storage_url, edit_config=_cap(2)) as api:
        job_id = str(uuid.uuid4())
        first = await api.create(job_id=job_id, headers={"Idempotency-Key": "order-1"})
        second = await api.create()
        refused = await api.create()
        assert [first.status_code, second.status_code, refused.status_code] == [201, 201, 429]
        error = refused.json()["error"]
        assert error["code"] == "watch_limit_reached"
        assert "2 active watches" in error["message"]
        assert "max_active_watches" in error["message"]
        assert error["request_id"] == refused.headers["X-Request-Id"]

        # Another client has its own count; a replayed request is not a new watch.
        assert (await api.create("bare")).status_code == 201
        replay = await api.create(job_id=job_id, headers={"Idempotency-Key": "order-1"})
        assert replay.status_code == 201
        assert replay.json()["watch"]["id"] == first.json()["watch"]["id"]

        # An ended watch frees its place.
        watch_id = second.json()["watch"]["id"]
        await api.http.delete(f"/v1/watches/{watch_id}", headers=api.auth())
        assert (await api.create()).status_code == 201
        assert (await api.create()).status_code == 429


async def test_api_watch_limit_holds_for_registrations_at_once(storage_url):
    async with running_api(storage_url, edit_config=_cap(3)) as api:
        answers = await asyncio.gather(*(api.create() for _ in range(8)))
    assert sorted(a.status_code for a in answers) == [201] * 3 + [429] * 5


async def test_openapi_names_watch_limit_reached_for_create_watch(tmp_path):
    async with running_api(f"sqlite:///{tmp_path}/bridge.db") as api:
        document = (await api.http.get("/openapi.json")).json()
    create = document["paths"]["/v1/watches"]["post"]["responses"]
    assert create["429"] == {"$ref": "#/components/responses/Error429"}
    assert "watch_limit_reached" in document["components"]["responses"]["Error429"]["description"]
