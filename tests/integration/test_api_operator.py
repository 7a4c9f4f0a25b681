"""The operator API over a real server: tokens kept apart both ways, every delivery by status and
channel a page at a time, redelivery one by one and in bulk, in order."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge.store.outbox import AttemptResult, ClaimedDelivery
from tests.integration.api_support import NOW, Api, running_api, seed_event

DELIVERY_FIELDS = {
    *("id", "event_id", "channel", "status", "attempts", "last_status_code", "last_error"),
    *("next_attempt_at", "watch_id", "import_id"),
}
OPS_ENDPOINTS = [
    ("GET", "/v1/ops/deliveries", None),
    ("POST", f"/v1/ops/deliveries/dlv_{uuid.uuid4().hex}/retry", None),
    ("POST", "/v1/ops/deliveries/retry", {}),
    ("GET", "/v1/ops/accounts", None),
    ("GET", "/v1/ops/channels", None),
]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/bridge.db"


async def _call(api: Api, who: str, method: str, path: str, body: Any) -> Any:
    return await api.http.request(method, path, json=body, headers=api.auth(who))


async def test_ops_endpoints_refuse_client_tokens(sqlite_url: str) -> None:
    async with running_api(sqlite_url) as api:
        refused = [await _call(api, "shop", *endpoint) for endpoint in OPS_ENDPOINTS]
        allowed = [await _call(api, "ops", *endpoint) for endpoint in OPS_ENDPOINTS]
    for response in refused:
        assert response.status_code == 401, response.request.url
        assert response.json()["error"]["code"] == "invalid_token"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert [r.status_code for r in allowed] == [200, 404, 202, 200, 200]


async def test_ops_token_refused_where_a_client_changes_its_watches(sqlite_url: str) -> None:
    async with running_api(sqlite_url) as api:
        watch_id = (await api.create()).json()["watch"]["id"]
        _, ids = await seed_event(
            api.store, watch_id=watch_id, sequence=1, destinations={"webhook_url": "dead"}
        )
        attempts = [
            ("POST", "/v1/watches", {"job_id": str(uuid.uuid4()), "account": "main"}),
            ("DELETE", f"/v1/watches/{watch_id}", None),
            ("DELETE", "/v1/watches/not-a-watch", None),
            ("POST", f"/v1/deliveries/{ids['webhook_url']}/retry", None),
        ]
        refused = [await _call(api, "ops", *attempt) for attempt in attempts]
        still = await api.store.watches.get(watch_id=watch_id)
        [delivery] = await api.store.watches.deliveries(watch_id=watch_id)
    for response in refused:
        assert (response.status_code, response.json()["error"]["code"]) == (401, "invalid_token")
    assert still is not None and still.status == "active"
    assert delivery.status == "dead"


async def test_ops_token_reads_every_clients_watches(storage_url: str) -> None:
    async with running_api(storage_url) as api:
        shops = (await api.create("shop")).json()["watch"]["id"]
        studios = (await api.create("studio", account="second")).json()["watch"]["id"]
        _, ids = await seed_event(
            api.store,
            watch_id=studios,
            sequence=1,
            destinations={"webhook_url": "delivered", "ops-hook": "dead"},
        )
        listed = await api.http.get("/v1/watches", headers=api.auth("ops"))
        one = await api.http.get(f"/v1/watches/{studios}", headers=api.auth("ops"))
        events = await api.http.get(f"/v1/watches/{studios}/events", headers=api.auth("ops"))
        deliveries = await api.http.get(
            f"/v1/watches/{studios}/deliveries", headers=api.auth("ops")
        )
        missing = await api.http.get(f"/v1/watches/wat_{uuid.uuid4().hex}", headers=api.auth("ops"))
    assert [w["id"] for w in listed.json()["watches"]] == [studios, shops]
    assert one.json()["watch"]["account"] == "second"
    assert len(events.json()["events"]) == 1
    assert {d["id"] for d in deliveries.json()["deliveries"]} == set(ids.values())
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "watch_not_found")


async def _seed_mix(api: Api) -> dict[str, tuple[str, str]]:
    """Deliveries of two clients' watches to the watches' webhooks and two channels, in several
    states; returns {delivery id: (channel, status)}."""
    made: dict[str, tuple[str, str]] = {}
    plans = [
        {"webhook_url": "delivered", "ops-hook": "dead", "catalog-slack": "delivered"},
        {"webhook_url": "dead", "ops-hook": "pending"},
        {"webhook_url": "pending", "ops-hook": "dead", "catalog-slack": "dead"},
    ]
    for client, account in (("shop", "main"), ("studio", "main")):
        watch_id = (await api.create(client, account=account)).json()["watch"]["id"]
        for sequence, plan in enumerate(plans, start=1):
            _, ids = await seed_event(
                api.store, watch_id=watch_id, sequence=sequence, destinations=plan
            )
            made.update({ids[name]: (name, status) for name, status in plan.items()})
    return made


async def _all_pages(api: Api, limit: int, **params: str) -> tuple[list[dict[str, Any]], int]:
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = {"limit": str(limit), **params, **({"cursor": cursor} if cursor else {})}
        response = await api.http.get("/v1/ops/deliveries", params=query, headers=api.auth("ops"))
        assert response.status_code == 200, response.text
        body = response.json()
        seen += body["deliveries"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return seen, pages


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"status": "dead"},
        {"channel": "ops-hook"},
        {"channel": "ops-hook", "status": "dead"},
        {"channel": "webhook_url", "status": "pending"},
        {"channel": "removed-long-ago"},
    ],
)
async def test_ops_deliveries_filter_and_page_newest_first(
    storage_url: str, params: dict[str, str]
) -> None:
    async with running_api(storage_url) as api:
        made = await _seed_mix(api)
        seen, pages = await _all_pages(api, 2, **params)
    expected = sorted(
        (
            dlv
            for dlv, (channel, status) in made.items()
            if params.get("channel", channel) == channel and params.get("status", status) == status
        ),
        reverse=True,
    )
    assert [d["id"] for d in seen] == expected
    assert pages == max(1, -(-len(expected) // 2))
    for item in seen:
        assert (item["channel"], item["status"]) == made[item["id"]]
        assert item["watch_id"].startswith("wat_")
        assert item["import_id"] is None
        assert set(item) == DELIVERY_FIELDS


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "lost"}, "status"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"cursor": "wat_0"}, "cursor"),
        ({"channel": ""}, "channel"),
    ],
)
async def test_ops_deliveries_name_a_bad_parameter(
    sqlite_url: str, query: dict[str, str], field: str
) -> None:
    async with running_api(sqlite_url) as api:
        response = await api.http.get("/v1/ops/deliveries", params=query, headers=api.auth("ops"))
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(f"{field}: ")


async def test_ops_retry_one_sends_a_dead_delivery_to_any_channel(storage_url: str) -> None:
    async with running_api(storage_url) as api:
        watch_id = (await api.create("studio", account="main")).json()["watch"]["id"]
        _, ids = await seed_event(
            api.store,
            watch_id=watch_id,
            sequence=1,
            destinations={"ops-hook": "dead", "webhook_url": "delivered"},
        )
        api.clock.advance(minutes=5)
        retried = await api.http.post(
            f"/v1/ops/deliveries/{ids['ops-hook']}/retry", headers=api.auth("ops")
        )
        again = await api.http.post(
            f"/v1/ops/deliveries/{ids['ops-hook']}/retry", headers=api.auth("ops")
        )
        delivered = await api.http.post(
            f"/v1/ops/deliveries/{ids['webhook_url']}/retry", headers=api.auth("ops")
        )
        unknown = await api.http.post(
            f"/v1/ops/deliveries/dlv_{uuid.uuid4().hex}/retry", headers=api.auth("ops")
        )
        malformed = await api.http.post("/v1/ops/deliveries/nope/retry", headers=api.auth("ops"))
    assert retried.status_code == 202
    assert retried.json()["delivery"] | {"id": "-", "event_id": "-"} == {
        "id": "-",
        "event_id": "-",
        "channel": "ops-hook",
        "status": "pending",
        "attempts": 8,
        "last_status_code": 500,
        "last_error": "HTTP 500",
        "next_attempt_at": "2026-11-28T12:05:00Z",
        "watch_id": watch_id,
        "import_id": None,
    }
    for response in (again, delivered):
        assert (response.status_code, response.json()["error"]["code"]) == (
            409,
            "delivery_not_dead",
        )
    for response in (unknown, malformed):
        assert (response.status_code, response.json()["error"]["code"]) == (
            404,
            "delivery_not_found",
        )


async def test_ops_retry_one_refuses_a_cancelled_watch(sqlite_url: str) -> None:
    async with running_api(sqlite_url) as api:
        watch_id = (await api.create()).json()["watch"]["id"]
        _, ids = await seed_event(
            api.store, watch_id=watch_id, sequence=1, destinations={"ops-hook": "dead"}
        )
        await api.http.delete(f"/v1/watches/{watch_id}", headers=api.auth())
        response = await api.http.post(
            f"/v1/ops/deliveries/{ids['ops-hook']}/retry", headers=api.auth("ops")
        )
    assert (response.status_code, response.json()["error"]["code"]) == (409, "watch_cancelled")


async def _dead_story(api: Api) -> tuple[dict[str, str], str]:
    """Two watches with dead deliveries to ops-hook before and after 13:00, others to
    catalog-slack and webhook_url, and a cancelled watch's; returns {name: delivery id} and the
    cancelled watch's id."""
    ids: dict[str, str] = {}
    first = (await api.create()).json()["watch"]["id"]
    second = (await api.create("studio", account="main")).json()["watch"]["id"]
    cancelled = (await api.create()).json()["watch"]["id"]
    story = [
        ("old", first, 1, NOW, {"ops-hook": "dead"}),
        ("a1", first, 2, NOW + timedelta(hours=1), {"ops-hook": "dead", "catalog-slack": "dead"}),
        ("b1", second, 1, NOW + timedelta(hours=1, minutes=1), {"ops-hook": "dead"}),
        ("a2", first, 3, NOW + timedelta(hours=2), {"ops-hook": "dead", "webhook_url": "dead"}),
        ("b2", second, 2, NOW + timedelta(hours=2), {"ops-hook": "dead"}),
        ("a3", first, 4, NOW + timedelta(hours=3), {"ops-hook": "dead"}),
        ("off", cancelled, 1, NOW + timedelta(hours=2), {"ops-hook": "dead"}),
    ]
    for name, watch_id, sequence, at, plan in story:
        _, made = await seed_event(
            api.store, watch_id=watch_id, sequence=sequence, destinations=plan, at=at
        )
        ids[name] = made["ops-hook"]
        ids.update({f"{name}:{k}": v for k, v in made.items() if k != "ops-hook"})
    await api.http.delete(f"/v1/watches/{cancelled}", headers=api.auth())
    return ids, first


def _claim_order(claimed: list[ClaimedDelivery], ids: dict[str, str]) -> list[str]:
    names = {v: k for k, v in ids.items()}
    return [names[c.id] for c in claimed]


async def test_ops_retry_all_dead_for_a_channel_since_a_time_in_order(storage_url: str) -> None:
    async with running_api(storage_url) as api:
        ids, _ = await _dead_story(api)
        api.clock.advance(hours=6)
        response = await api.http.post(
            "/v1/ops/deliveries/retry",
            json={"channel": "ops-hook", "since": "2026-11-28T14:00:00+01:00"},
            headers=api.auth("ops"),
        )
        page, _ = await api.store.ops.deliveries_page(
            status=None, destination=None, limit=100, cursor=None
        )
        rows = {d.id: d.status for d in page}
        # Sent again in order: each watch's earliest first, its later ones wait for it.
        now = api.clock()
        first = await api.store.outbox.claim_due(now=now, owner="t", lease_s=60, limit=100)
        await _deliver(api, first)
        second = await api.store.outbox.claim_due(now=now, owner="t", lease_s=60, limit=100)
    assert response.status_code == 202
    assert response.json() == {"retried": 5}
    retried = {"a1", "b1", "a2", "b2", "a3"}
    for name, delivery_id in ids.items():
        assert rows[delivery_id] == ("pending" if name in retried else "dead"), name
    assert _claim_order(first, ids) == ["a1", "b1"]
    assert _claim_order(second, ids) == ["a2", "b2"]


async def _deliver(api: Api, claimed: list[ClaimedDelivery]) -> None:
    await api.store.outbox.record_attempts(
        [
            AttemptResult(
                delivery_id=c.id, attempted_at=api.clock(), duration_ms=1.0, status="delivered"
            )
            for c in claimed
        ],
        now=api.clock(),
        owner="t",
    )


async def test_ops_retry_all_without_filters_in_small_batches(storage_url: str) -> None:
    async with running_api(storage_url) as api:
        ids, _ = await _dead_story(api)
        retried = await api.store.ops.retry_dead(
            destination=None, since=None, now=api.clock(), batch=2
        )
        page, _ = await api.store.ops.deliveries_page(
            status="dead", destination=None, limit=100, cursor=None
        )
    assert retried == len(ids) - 1  # all but the cancelled watch's
    assert [d.id for d in page] == [ids["off"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channel": "ops-mial"}, "channel"),
        ({"since": "2026-11-28T14:00:00"}, "since"),
        ({"since": "0001-01-01T00:00:00+01:00"}, "since"),
        ({"since": "yesterday"}, "since"),
        ({"channel": 5}, "channel"),
        ({"everything": True}, "everything"),
    ],
)
async def test_ops_retry_all_names_a_bad_field(
    sqlite_url: str, body: dict[str, Any], field: str
) -> None:
    async with running_api(sqlite_url) as api:
        response = await api.http.post(
            "/v1/ops/deliveries/retry", json=body, headers=api.auth("ops")
        )
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(f"{field}: ")
