"""The watches API over a real server: CRUD, tenants, idempotency, paging, events and deliveries."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from bridge.store.tables import upstream_jobs, watches
from tests.integration.api_support import NOW, Api, running_api, seed_event


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/bridge.db"


async def test_api_watch_lifecycle(storage_url: str) -> None:
    async with running_api(storage_url) as api:
        job_id = str(uuid.uuid4()).upper()
        created = await api.create(
            job_id=job_id,
            webhook_url="https://hooks.example.com/photos",
            events=["job.*", "item.failed"],
            metadata={"order": "A-1"},
        )
        assert created.status_code == 201
        watch = created.json()["watch"]
        assert re.fullmatch(r"wat_[0-9a-f]{32}", watch["id"])
        assert watch == {
            "id": watch["id"],
            "job_id": job_id.lower(),
            "account": "main",
            "status": "active",
            "webhook_url": "https://hooks.example.com/photos",
            "events": ["job.*", "item.failed"],
            "metadata": {"order": "A-1"},
            "created_at": "2026-11-28T12:00:00Z",
            "updated_at": "2026-11-28T12:00:00Z",
            "last_polled_at": None,
            "next_poll_at": "2026-11-28T12:00:00Z",
            "job": None,
            "error": None,
            "import_id": None,
        }

        stored = await api.store.watches.get(watch_id=watch["id"])
        assert stored is not None
        assert (stored.client, stored.expires_at) == ("shop", NOW + timedelta(hours=48))

        fetched = await api.http.get(f"/v1/watches/{watch['id']}", headers=api.auth())
        assert fetched.status_code == 200
        assert fetched.json() == {"watch": watch}

        listed = await api.http.get("/v1/watches", headers=api.auth())
        assert listed.json() == {"watches": [watch], "next_cursor": None}

        api.clock.advance(minutes=5)
        cancelled = await api.http.delete(f"/v1/watches/{watch['id']}", headers=api.auth())
        assert cancelled.status_code == 200
        body = cancelled.json()["watch"]
        assert (body["status"], body["updated_at"], body["next_poll_at"]) == (
            "cancelled",
            "2026-11-28T12:05:00Z",
            None,
        )

        api.clock.advance(minutes=5)
        again = await api.http.delete(f"/v1/watches/{watch['id']}", headers=api.auth())
        assert again.status_code == 200
        assert again.json() == cancelled.json()


async def test_api_create_defaults(sqlite_url: str) -> None:
    async with running_api(sqlite_url) as api:
        response = await api.create()
        watch = response.json()["watch"]
        assert (watch["events"], watch["metadata"], watch["webhook_url"]) == (["*"], {}, None)
        assert response.headers.get("Idempotent-Replayed") is None


async def test_api_create_explicit_nulls_mean_defaults(sqlite_url: str) -> None:
    async with running_api(sqlite_url) as api:
        response = await api.create(account=None, webhook_url=None, events=None, metadata=None)
        watch = response.json()["watch"]
        assert response.status_code == 201
        assert (watch["account"], watch["events"], watch["metadata"]) == ("main", ["*"], {})


async def test_api_create_names_the_account_when_client_has_several(sqlite_url: str) -> None:
    async with running_api(sqlite_url) as api:
        missing = await api.create("studio")
        chosen = await api.create("studio", account="second")
    assert missing.status_code == 400
    assert missing.json()["error"]["message"].startswith("account: ")
    assert chosen.status_code == 201
    assert chosen.json()["watch"]["account"] == "second"


async def test_api_create_shows_the_polled_job(sqlite_url: str) -> None:
    async with running_api(sqlite_url) as api:
        job_id = str(uuid.uuid4())
        watch = (await api.create(job_id=job_id)).json()["watch"]
        snapshot = {
            "id": job_id,
            "status": "processing",
            "total_items": 20,
            "completed_items": 7,
            "failed_items": 1,
            "credits_used": 7,
            "items": [],
        }
        async with api.store.db.engine.begin() as conn:
            await conn.execute(
                update(upstream_jobs)
                .where(upstream_jobs.c.job_id == job_id)
                .values(snapshot=snapshot, last_polled_at=NOW)
            )
            await conn.execute(
                update(watches)
                .where(watches.c.id == watch["id"])
                .values(status="failed", error_code="job_not_found", error_message="gone")
            )
        body = (await api.http.get(f"/v1/watches/{watch['id']}", headers=api.auth())).json()
    assert body["watch"]["job"] == {
        "status": "processing",
        "total_items": 20,
        "completed_items": 7,
        "failed_items": 1,
        "credits_used": 7,
    }
    assert body["watch"]["last_polled_at"] == "2026-11-28T12:00:00Z"
    assert body["watch"]["error"] == {"code": "job_not_found", "message": "gone"}
    assert body["watch"]["next_poll_at"] is None


async def test_api_tenants_cannot_see_each_others_watches(sqlite_url: str) -> None:
    async with running_api(sqlite_url) as api:
        mine = (await api.create("shop")).json()["watch"]["id"]
        theirs = await api.create("studio", account="main")
        other = api.auth("studio")
        paths = [
            f"/v1/watches/{mine}",
            f"/v1/watches/{mine}/events",
            f"/v1/watches/{mine}/deliveries",
        ]
        for path in paths:
            response = await api.http.get(path, headers=other)
            assert response.status_code == 404
            assert response.json()["error"]["code"] == "watch_not_found"
        deleted = await api.http.delete(f"/v1/watches/{mine}", headers=other)
        listed = await api.http.get("/v1/watches", headers=other)
        still = await api.http.get(f"/v1/watches/{mine}", headers=api.auth("shop"))
    assert deleted.status_code == 404
    assert deleted.json()["error"]["code"] == "watch_not_found"
    assert [w["id"] for w in listed.json()["watches"]] == [theirs.json()["watch"]["id"]]
    assert still.json()["watch"]["status"] == "active"


async def test_api_idempotency_key_returns_the_same_watch(sqlite_url: str) -> None:
    async with running_api(sqlite_url) as api:
        job_id = str(uuid.uuid4())
        key = {"Idempotency-Key": "order-A-1"}
        first = await api.create(job_id=job_id, headers=key)
        second = await api.create(job_id=job_id, headers=key)
        other_client = await api.create("studio", account="main", job_id=job_id, headers=key)
        different = await api.create(job_id=str(uuid.uuid4()), headers=key)
        listed = await api.http.get("/v1/watches", headers=api.auth())
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert other_client.status_code == 201
    assert other_client.json()["watch"]["id"] != first.json()["watch"]["id"]
    assert different.status_code == 400
    assert different.json()["error"]["message"].startswith("Idempotency-Key: ")
    assert len(listed.json()["watches"]) == 1


@pytest.mark.parametrize("key", [b"", b"x" * 256, "caf\u00e9".encode(), b"a\tb"])
async def test_api_idempotency_key_is_checked(sqlite_url: str, key: bytes) -> None:
    async with running_api(sqlite_url) as api:
        response = await api.create(headers={"Idempotency-Key": key})
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("Idempotency-Key: ")


async def test_api_pagination_visits_every_watch_once(sqlite_url: str) -> None:
    async with running_api(sqlite_url) as api:
        made = [(await api.create()).json()["watch"]["id"] for _ in range(7)]
        seen: list[str] = []
        pages = 0
        cursor = None
        while True:
            params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            page = (await api.http.get("/v1/watches", params=params, headers=api.auth())).json()
            pages += 1
            seen += [w["id"] for w in page["watches"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
    assert pages == 3
    assert seen == sorted(made, reverse=True)


async def test_api_cancel_leaves_an_ended_watch_as_it_is(sqlite_url: str) -> None:
    async with running_api(sqlite_url) as api:
        watch_id = (await api.create()).json()["watch"]["id"]
        async with api.store.db.engine.begin() as conn:
            await conn.execute(
                update(watches).where(watches.c.id == watch_id).values(status="completed")
            )
        api.clock.advance(minutes=1)
        response = await api.http.delete(f"/v1/watches/{watch_id}", headers=api.auth())
    assert response.status_code == 200
    assert response.json()["watch"]["status"] == "completed"
    assert response.json()["watch"]["updated_at"] == "2026-11-28T12:00:00Z"


async def test_api_list_filters_by_status(sqlite_url: str) -> None:
    async with running_api(sqlite_url) as api:
        ids = [(await api.create()).json()["watch"]["id"] for _ in range(3)]
        await api.http.delete(f"/v1/watches/{ids[1]}", headers=api.auth())
        cancelled = await api.http.get(
            "/v1/watches", params={"status": "cancelled"}, headers=api.auth()
        )
        active = await api.http.get("/v1/watches", params={"status": "active"}, headers=api.auth())
    assert [w["id"] for w in cancelled.json()["watches"]] == [ids[1]]
    assert [w["id"] for w in active.json()["watches"]] == [ids[2], ids[0]]


async def test_api_events_and_deliveries_of_a_watch(storage_url: str) -> None:
    async with running_api(storage_url) as api:
        watch_id = (await api.create()).json()["watch"]["id"]
        second, _ = await seed_event(
            api.store, watch_id=watch_id, sequence=2, destinations={"webhook_url": "pending"}
        )
        first, ids = await seed_event(
            api.store,
            watch_id=watch_id,
            sequence=1,
            destinations={"webhook_url": "dead", "catalog-slack": "delivered"},
        )
        events = await api.http.get(f"/v1/watches/{watch_id}/events", headers=api.auth())
        listed = await api.http.get(f"/v1/watches/{watch_id}/deliveries", headers=api.auth())
    assert events.json() == {"events": [first, second]}
    deliveries = listed.json()["deliveries"]
    assert [(d["channel"], d["status"]) for d in deliveries] == [
        ("webhook_url", "dead"),
        ("webhook_url", "pending"),
    ]
    assert deliveries[0] == {
        "id": ids["webhook_url"],
        "event_id": first["data"]["event_id"],
        "channel": "webhook_url",
        "status": "dead",
        "attempts": 8,
        "last_status_code": 500,
        "last_error": "HTTP 500",
        "next_attempt_at": None,
    }


async def _two_tenants(api: Api) -> tuple[str, str, dict[str, str], dict[str, str]]:
    """A watch of shop's and one of studio's, each with a dead webhook delivery; shop's event also
    went (dead) to the operator's ops-hook and (delivered) to catalog-slack."""
    mine = (await api.create("shop")).json()["watch"]["id"]
    theirs = (await api.create("studio", account="main")).json()["watch"]["id"]
    _, my_ids = await seed_event(
        api.store,
        watch_id=mine,
        sequence=1,
        destinations={"webhook_url": "dead", "ops-hook": "dead", "catalog-slack": "delivered"},
    )
    _, their_ids = await seed_event(
        api.store, watch_id=theirs, sequence=1, destinations={"webhook_url": "dead"}
    )
    return mine, theirs, my_ids, their_ids


async def test_api_client_lists_only_deliveries_to_its_own_webhook(storage_url: str) -> None:
    async with running_api(storage_url) as api:
        mine, theirs, my_ids, their_ids = await _two_tenants(api)
        shop = await api.http.get(f"/v1/watches/{mine}/deliveries", headers=api.auth("shop"))
        studio = await api.http.get(f"/v1/watches/{theirs}/deliveries", headers=api.auth("studio"))
        crossed = await api.http.get(f"/v1/watches/{mine}/deliveries", headers=api.auth("studio"))
        ops = await api.http.get(f"/v1/watches/{mine}/deliveries", headers=api.auth("ops"))
    assert [d["id"] for d in shop.json()["deliveries"]] == [my_ids["webhook_url"]]
    assert [d["id"] for d in studio.json()["deliveries"]] == [their_ids["webhook_url"]]
    assert (crossed.status_code, crossed.json()["error"]["code"]) == (404, "watch_not_found")
    assert sorted(d["channel"] for d in ops.json()["deliveries"]) == [
        "catalog-slack",
        "ops-hook",
        "webhook_url",
    ]


async def test_api_client_retries_only_its_own_webhook_deliveries(storage_url: str) -> None:
    async with running_api(storage_url) as api:
        mine, theirs, my_ids, their_ids = await _two_tenants(api)
        attempts = {
            "shop: operator's channel": ("shop", my_ids["ops-hook"]),
            "shop: studio's webhook": ("shop", their_ids["webhook_url"]),
            "studio: operator's channel": ("studio", my_ids["ops-hook"]),
            "studio: shop's webhook": ("studio", my_ids["webhook_url"]),
        }
        refused = {
            label: await api.http.post(f"/v1/deliveries/{dlv}/retry", headers=api.auth(who))
            for label, (who, dlv) in attempts.items()
        }
        untouched = {
            d.id: d.status
            for watch_id in (mine, theirs)
            for d in await api.store.watches.deliveries(watch_id=watch_id)
        }
        shop = await api.http.post(
            f"/v1/deliveries/{my_ids['webhook_url']}/retry", headers=api.auth("shop")
        )
        studio = await api.http.post(
            f"/v1/deliveries/{their_ids['webhook_url']}/retry", headers=api.auth("studio")
        )
    for label, response in refused.items():
        assert (response.status_code, response.json()["error"]["code"]) == (
            404,
            "delivery_not_found",
        ), label
    assert untouched == {
        my_ids["webhook_url"]: "dead",
        my_ids["ops-hook"]: "dead",
        my_ids["catalog-slack"]: "delivered",
        their_ids["webhook_url"]: "dead",
    }
    assert (shop.status_code, shop.json()["delivery"]["status"]) == (202, "pending")
    assert (studio.status_code, studio.json()["delivery"]["status"]) == (202, "pending")


async def test_api_retry_sends_a_dead_delivery_again(storage_url: str) -> None:
    async with running_api(storage_url) as api:
        watch_id = (await api.create()).json()["watch"]["id"]
        ids = {}
        for sequence, status in enumerate(("dead", "delivered", "pending"), start=1):
            _, made = await seed_event(
                api.store,
                watch_id=watch_id,
                sequence=sequence,
                destinations={"webhook_url": status},
            )
            ids[status] = made["webhook_url"]
        api.clock.advance(hours=1)
        other = await api.http.post(
            f"/v1/deliveries/{ids['dead']}/retry", headers=api.auth("studio")
        )
        retried = await api.http.post(f"/v1/deliveries/{ids['dead']}/retry", headers=api.auth())
        twice = await api.http.post(f"/v1/deliveries/{ids['dead']}/retry", headers=api.auth())
        done = await api.http.post(f"/v1/deliveries/{ids['delivered']}/retry", headers=api.auth())
        unknown = await api.http.post(
            f"/v1/deliveries/dlv_{uuid.uuid4().hex}/retry", headers=api.auth()
        )
        stored = await api.store.watches.deliveries(watch_id=watch_id)
    assert other.status_code == 404
    assert other.json()["error"]["code"] == "delivery_not_found"
    assert unknown.json()["error"]["code"] == "delivery_not_found"
    assert retried.status_code == 202
    assert retried.json()["delivery"]["status"] == "pending"
    assert retried.json()["delivery"]["next_attempt_at"] == "2026-11-28T13:00:00Z"
    assert (twice.status_code, twice.json()["error"]["code"]) == (409, "delivery_not_dead")
    assert (done.status_code, done.json()["error"]["code"]) == (409, "delivery_not_dead")
    row = next(d for d in stored if d.id == ids["dead"])
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 8, api.clock())


async def test_api_retry_refuses_a_cancelled_watch(sqlite_url: str) -> None:
    async with running_api(sqlite_url) as api:
        watch_id = (await api.create()).json()["watch"]["id"]
        _, ids = await seed_event(
            api.store, watch_id=watch_id, sequence=1, destinations={"webhook_url": "dead"}
        )
        await api.http.delete(f"/v1/watches/{watch_id}", headers=api.auth())
        response = await api.http.post(
            f"/v1/deliveries/{ids['webhook_url']}/retry", headers=api.auth()
        )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "watch_cancelled"


async def test_api_webhook_url_allowed_host_is_exempt(sqlite_url: str) -> None:
    async with running_api(sqlite_url) as api:
        response = await api.create(webhook_url="http://127.0.0.1:9000/hook")
    assert response.status_code == 201
    assert response.json()["watch"]["webhook_url"] == "http://127.0.0.1:9000/hook"
