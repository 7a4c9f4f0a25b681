"""The imports API over a real server: create, add jobs, close, read, list, cancel, idempotency,
tenancy, errors, and watches joining and leaving imports."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge.config import Config
from tests.integration.api_support import NOW, Api, running_api

HOOK = "https://hooks.example.com/imports"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/bridge.db"


async def _create(api: Api, client: str = "shop", *, headers: Any = None, **body: Any) -> Any:
    body.setdefault("name", "Fall catalog")
    return await api.http.post(
        "/v1/imports", json=body, headers={**api.auth(client), **(headers or {})}
    )


async def _import(api: Api, client: str = "shop", **body: Any) -> dict[str, Any]:
    response = await _create(api, client, **body)
    assert response.status_code == 201, response.text
    return dict(response.json()["import"])


async def _add(api: Api, import_id: str, job_ids: list[str], client: str = "shop", **body: Any):
    return await api.http.post(
        f"/v1/imports/{import_id}/jobs", json={"job_ids": job_ids, **body}, headers=api.auth(client)
    )


async def _event_types(api: Api, import_id: str) -> list[str]:
    return [e.type for e in await api.store.watches.events(watch_id=import_id)]


def _jobs(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


async def test_api_import_lifecycle(storage_url: str) -> None:
    async with running_api(storage_url) as api:
        created = await _create(
            api,
            webhook_url=HOOK,
            events=["import.*", "job.*"],
            metadata={"season": "fall"},
            expected_jobs=3,
        )
        assert created.status_code == 201
        found = created.json()["import"]
        assert re.fullmatch(r"imp_[0-9a-f]{32}", found["id"])
        assert found == {
            "id": found["id"],
            "name": "Fall catalog",
            "account": "main",
            "status": "open",
            "closed": False,
            "expected_jobs": 3,
            "jobs": dict.fromkeys(
                ("total", "active", "completed", "partially_completed", "failed", "cancelled"), 0
            ),
            "images": {"total": 0, "completed": 0, "failed": 0, "pending": 0},
            "credits_used": 0,
            "rate_images_per_hour": None,
            "eta": None,
            "stalled": False,
            "webhook_url": HOOK,
            "events": ["import.*", "job.*"],
            "metadata": {"season": "fall"},
            "created_at": "2026-11-28T12:00:00Z",
            "updated_at": "2026-11-28T12:00:00Z",
            "ended_at": None,
        }
        import_id = found["id"]
        fetched = await api.http.get(f"/v1/imports/{import_id}", headers=api.auth())
        assert fetched.json() == {"import": found}
        listed = await api.http.get("/v1/imports", headers=api.auth())
        assert listed.json() == {"imports": [found], "next_cursor": None}

        jobs = _jobs(2)
        added = await _add(api, import_id, [jobs[0].upper(), jobs[1]], metadata={"sku": "A-1"})
        assert added.status_code == 201
        watches = added.json()["watches"]
        assert [w["job_id"] for w in watches] == jobs
        for watch in watches:
            assert watch["import_id"] == import_id
            assert (watch["account"], watch["webhook_url"], watch["events"]) == (
                "main",
                HOOK,
                ["import.*", "job.*"],
            )
            assert watch["metadata"] == {"season": "fall", "sku": "A-1"}
            assert watch["status"] == "active"

        stored = await api.store.watches.get(watch_id=watches[0]["id"])
        assert stored is not None  # an import's jobs live imports.job_ttl_h, not watch_ttl_h
        assert stored.expires_at == NOW + timedelta(hours=720)

        again = await _add(api, import_id, [jobs[1], jobs[1]])
        assert again.status_code == 201
        assert [w["id"] for w in again.json()["watches"]] == [watches[1]["id"]]
        rolled = (await api.http.get(f"/v1/imports/{import_id}", headers=api.auth())).json()
        assert rolled["import"]["jobs"]["total"] == 2  # the repeated job is not counted twice

        watch = await api.http.get(f"/v1/watches/{watches[0]['id']}", headers=api.auth())
        assert watch.json()["watch"]["import_id"] == import_id

        api.clock.advance(minutes=5)
        closed = await api.http.post(f"/v1/imports/{import_id}/close", headers=api.auth())
        assert closed.status_code == 200
        assert (closed.json()["import"]["closed"], closed.json()["import"]["status"]) == (
            True,
            "open",
        )
        refused = await _add(api, import_id, _jobs(1))
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "import_closed"

        api.clock.advance(minutes=5)
        cancelled = await api.http.delete(f"/v1/imports/{import_id}", headers=api.auth())
        assert cancelled.status_code == 200
        body = cancelled.json()["import"]
        assert (body["status"], body["ended_at"]) == ("cancelled", "2026-11-28T12:10:00Z")
        assert body["jobs"]["cancelled"] == 2 and body["jobs"]["active"] == 0
        for watch in watches:
            gone = await api.http.get(f"/v1/watches/{watch['id']}", headers=api.auth())
            assert gone.json()["watch"]["status"] == "cancelled"
        assert await _event_types(api, import_id) == ["import.cancelled"]
        sent = await api.store.watches.deliveries(watch_id=import_id)
        assert [(d.destination, d.status) for d in sent] == [("webhook_url", "pending")]

        api.clock.advance(minutes=5)
        repeat = await api.http.delete(f"/v1/imports/{import_id}", headers=api.auth())
        assert repeat.json() == cancelled.json()  # an ended import stays as it is
        assert await _event_types(api, import_id) == ["import.cancelled"]


async def test_api_import_defaults_and_listing_pages(sqlite_url: str) -> None:
    async with running_api(sqlite_url) as api:
        made = [await _import(api, name=f"batch {i}") for i in range(3)]
        assert (made[0]["events"], made[0]["metadata"], made[0]["webhook_url"]) == (["*"], {}, None)
        first = (await api.http.get("/v1/imports?limit=2", headers=api.auth())).json()
        assert [i["name"] for i in first["imports"]] == ["batch 2", "batch 1"]
        cursor = first["next_cursor"]
        rest = await api.http.get(f"/v1/imports?limit=2&cursor={cursor}", headers=api.auth())
        assert [i["name"] for i in rest.json()["imports"]] == ["batch 0"]
        assert rest.json()["next_cursor"] is None
        await api.http.delete(f"/v1/imports/{made[1]['id']}", headers=api.auth())
        cancelled = await api.http.get("/v1/imports?status=cancelled", headers=api.auth())
        assert [i["id"] for i in cancelled.json()["imports"]] == [made[1]["id"]]


async def test_api_import_idempotency_key_returns_the_same_import(sqlite_url: str) -> None:
    async with running_api(sqlite_url) as api:
        key = {"Idempotency-Key": "catalog-2026-fall"}
        first = await _create(api, headers=key, metadata={"a": "1"}, expected_jobs=5)
        second = await _create(api, headers=key, metadata={"a": "1"}, expected_jobs=5)
        assert (first.status_code, second.status_code) == (201, 201)
        assert second.json() == first.json()
        assert second.headers["Idempotent-Replayed"] == "true"
        assert "Idempotent-Replayed" not in first.headers
        other = await _create(api, headers=key, metadata={"a": "2"}, expected_jobs=5)
        assert other.status_code == 400
        assert other.json()["error"]["message"].startswith("Idempotency-Key: ")
        # The key is the client's own: another client's same key makes its own import.
        elsewhere = await _create(api, "studio", headers=key, account="main")
        assert elsewhere.json()["import"]["id"] != first.json()["import"]["id"]
        listed = (await api.http.get("/v1/imports", headers=api.auth())).json()["imports"]
        assert len(listed) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "a\u0000b"}, "name"),
        ({"expected_jobs": 0}, "expected_jobs"),
        ({"expected_jobs": 100_001}, "expected_jobs"),
        ({"metadata": {f"k{i}": "v" for i in range(21)}}, "metadata"),
        ({"events": ["photo.*"]}, "events[0]"),
        ({"webhook_url": "not a url"}, "webhook_url"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_api_import_create_names_the_bad_field(
    sqlite_url: str, body: dict[str, Any], field: str
) -> None:
    async with running_api(sqlite_url) as api:
        response = await _create(api, **body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["message"].startswith(f"{field}: ")


async def test_api_import_account_and_webhook_rules_as_for_watches(sqlite_url: str) -> None:
    async with running_api(sqlite_url) as api:
        several = await _create(api, "studio")
        assert several.status_code == 400
        assert several.json()["error"]["message"].startswith("account: ")
        assert (await _create(api, "studio", account="second")).status_code == 201
        forbidden = await _create(api, account="second")
        assert (forbidden.status_code, forbidden.json()["error"]["code"]) == (
            403,
            "account_not_allowed",
        )
        unsafe = await _create(api, webhook_url="https://internal.example.com/hook")
        assert (unsafe.status_code, unsafe.json()["error"]["code"]) == (422, "unsafe_webhook_url")
        unsigned = await _create(api, "bare", webhook_url=HOOK)
        assert unsigned.status_code == 400
        assert unsigned.json()["error"]["message"].startswith("webhook_url: ")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"job_ids": []}, "job_ids"),
        ({"job_ids": _jobs(101)}, "job_ids"),
        ({"job_ids": ["not-a-uuid"]}, "job_ids[0]"),
        ({"job_ids": _jobs(1), "metadata": {"k": 1}}, "metadata.k"),
        ({"job_ids": _jobs(1), "metadata": {f"k{i}": "v" for i in range(20)}}, "metadata"),
        ({}, "job_ids"),
    ],
)
async def test_api_import_add_jobs_names_the_bad_field(
    sqlite_url: str, body: dict[str, Any], field: str
) -> None:
    async with running_api(sqlite_url) as api:
        found = await _import(api, metadata={"season": "fall"})
        response = await api.http.post(
            f"/v1/imports/{found['id']}/jobs", json=body, headers=api.auth()
        )
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(f"{field}")


async def test_api_import_not_found_for_unknown_and_malformed_ids(sqlite_url: str) -> None:
    async with running_api(sqlite_url) as api:
        for import_id in ("imp_" + "0" * 32, "nope", "wat_" + "0" * 32):
            for method, path in (
                ("GET", ""),
                ("DELETE", ""),
                ("POST", "/close"),
                ("GET", "/failures"),
                ("GET", "/failures?format=csv"),
            ):
                response = await api.http.request(
                    method, f"/v1/imports/{import_id}{path}", headers=api.auth()
                )
                assert response.status_code == 404, (method, path)
                assert response.json()["error"]["code"] == "import_not_found"
            added = await _add(api, import_id, _jobs(1))
            assert added.json()["error"]["code"] == "import_not_found"


async def test_api_import_expected_jobs_closes_it(storage_url: str) -> None:
    async with running_api(storage_url) as api:
        found = await _import(api, expected_jobs=3)
        first = await _add(api, found["id"], _jobs(2))
        assert first.status_code == 201
        second = await _add(api, found["id"], _jobs(1))
        assert second.status_code == 201
        closed = (await api.http.get(f"/v1/imports/{found['id']}", headers=api.auth())).json()
        assert closed["import"]["closed"] is True
        assert closed["import"]["jobs"]["total"] == 3
        late = await _add(api, found["id"], _jobs(1))
        assert (late.status_code, late.json()["error"]["code"]) == (409, "import_closed")
        # A job already in it is no new job: it still returns its watch.
        known = second.json()["watches"][0]
        replay = await _add(api, found["id"], [known["job_id"]])
        assert replay.status_code == 201
        assert replay.json()["watches"] == [known]
        joined = await api.create(job_id=str(uuid.uuid4()), import_id=found["id"])
        assert (joined.status_code, joined.json()["error"]["code"]) == (409, "import_closed")


def _cap(limit: int):
    def edit(config: Config) -> Config:
        clients = {
            name: client.model_copy(update={"max_active_watches": limit})
            for name, client in config.clients.items()
        }
        return config.model_copy(update={"clients": clients})

    return edit


async def test_api_import_jobs_count_toward_max_active_watches(storage_url: str) -> None:
    async with running_api(storage_url, edit_config=_cap(3)) as api:
        found = await _import(api)
        assert (await _add(api, found["id"], _jobs(2))).status_code == 201
        over = await _add(api, found["id"], _jobs(2))
        assert (over.status_code, over.json()["error"]["code"]) == (429, "watch_limit_reached")
        after = (await api.http.get(f"/v1/imports/{found['id']}", headers=api.auth())).json()
        assert after["import"]["jobs"]["total"] == 2  # the refused request added nothing
        assert (await _add(api, found["id"], _jobs(1))).status_code == 201
        joined = await api.create(import_id=found["id"])
        assert (joined.status_code, joined.json()["error"]["code"]) == (429, "watch_limit_reached")


async def test_api_import_belongs_to_its_client(storage_url: str) -> None:
    async with running_api(storage_url) as api:
        found = await _import(api)
        import_id = found["id"]
        [watch] = (await _add(api, import_id, _jobs(1))).json()["watches"]
        for method, path in (
            ("GET", ""),
            ("DELETE", ""),
            ("POST", "/close"),
            ("GET", "/failures"),
            ("GET", "/failures?format=csv"),
        ):
            response = await api.http.request(
                method, f"/v1/imports/{import_id}{path}", headers=api.auth("studio")
            )
            assert response.status_code == 404, (method, path)
            assert response.json()["error"]["code"] == "import_not_found"
        csv = await api.http.get(
            f"/v1/imports/{import_id}/failures", headers=api.auth("studio", Accept="text/csv")
        )
        assert csv.status_code == 404
        added = await _add(api, import_id, _jobs(1), client="studio")
        assert added.json()["error"]["code"] == "import_not_found"
        joined = await api.create("studio", account="main", import_id=import_id)
        assert (joined.status_code, joined.json()["error"]["code"]) == (404, "import_not_found")
        listed = await api.http.get("/v1/imports", headers=api.auth("studio"))
        assert listed.json() == {"imports": [], "next_cursor": None}
        gone = await api.http.delete(f"/v1/watches/{watch['id']}", headers=api.auth("studio"))
        assert gone.status_code == 404
        # Nothing the other client tried changed it.
        still = (await api.http.get(f"/v1/imports/{import_id}", headers=api.auth())).json()
        assert (still["import"]["status"], still["import"]["closed"]) == ("open", False)
        assert still["import"]["jobs"]["active"] == 1


async def test_api_operators_read_every_import(sqlite_url: str) -> None:
    async with running_api(sqlite_url) as api:
        shops = await _import(api)
        studios = await _import(api, "studio", account="second")
        ops = api.auth("ops")
        for path in ("/v1/imports", "/v1/ops/imports"):
            listed = (await api.http.get(path, headers=ops)).json()["imports"]
            assert [i["id"] for i in listed] == [studios["id"], shops["id"]]
        for found in (shops, studios):
            for path in (f"/v1/imports/{found['id']}", f"/v1/ops/imports/{found['id']}"):
                response = await api.http.get(path, headers=ops)
                assert response.json()["import"]["id"] == found["id"]
            for path in (
                f"/v1/imports/{found['id']}/failures",
                f"/v1/ops/imports/{found['id']}/failures",
            ):
                response = await api.http.get(path, headers=ops)
                assert response.json() == {"failures": [], "next_cursor": None}
                csv = await api.http.get(f"{path}?format=csv", headers=ops)
                assert csv.text == "external_id,job_id,item_id,error_code,error_message\r\n"
        unknown = await api.http.get("/v1/ops/imports/imp_" + "0" * 32, headers=ops)
        assert unknown.json()["error"]["code"] == "import_not_found"
        # Operators read; they change nothing, and clients do not reach /v1/ops.
        for method, path in (
            ("POST", "/v1/imports"),
            ("POST", f"/v1/imports/{shops['id']}/jobs"),
            ("POST", f"/v1/imports/{shops['id']}/close"),
            ("DELETE", f"/v1/imports/{shops['id']}"),
        ):
            response = await api.http.request(method, path, headers=ops, json={"name": "x"})
            assert response.status_code == 401, (method, path)
        client = await api.http.get("/v1/ops/imports", headers=api.auth())
        assert client.status_code == 401


async def test_api_watch_joins_an_import(storage_url: str) -> None:
    async with running_api(storage_url) as api:
        found = await _import(
            api, "studio", account="second", webhook_url=HOOK, metadata={"season": "fall"}
        )
        job_id = str(uuid.uuid4())
        joined = await api.create(
            "studio", job_id=job_id, import_id=found["id"], metadata={"x": "1"}
        )
        assert joined.status_code == 201, joined.text
        watch = joined.json()["watch"]
        assert (watch["import_id"], watch["account"], watch["webhook_url"], watch["events"]) == (
            found["id"],
            "second",
            HOOK,
            ["*"],
        )
        assert watch["metadata"] == {"season": "fall", "x": "1"}
        again = await api.create("studio", job_id=job_id, import_id=found["id"])
        assert again.json()["watch"]["id"] == watch["id"]
        listed = await _add(api, found["id"], [job_id], client="studio")
        assert listed.json()["watches"][0]["id"] == watch["id"]
        for extra, field in (({"webhook_url": HOOK}, "webhook_url"), ({"events": ["*"]}, "events")):
            refused = await api.create("studio", import_id=found["id"], **extra)
            assert refused.status_code == 400
            assert refused.json()["error"]["message"].startswith(f"{field}: ")
        other = await api.create("studio", import_id=found["id"], account="main")
        assert other.status_code == 400
        assert other.json()["error"]["message"].startswith("account: ")
        missing = await api.create("studio", import_id="imp_" + "0" * 32)
        assert (missing.status_code, missing.json()["error"]["code"]) == (404, "import_not_found")
        bad = await api.create("studio", import_id="nope")
        assert bad.status_code == 400
        assert bad.json()["error"]["message"].startswith("import_id: ")


async def test_api_cancelling_the_last_watch_ends_the_import(storage_url: str) -> None:
    async with running_api(storage_url) as api:
        found = await _import(api)
        watches = (await _add(api, found["id"], _jobs(2))).json()["watches"]
        await api.http.post(f"/v1/imports/{found['id']}/close", headers=api.auth())
        first = await api.http.delete(f"/v1/watches/{watches[0]['id']}", headers=api.auth())
        assert first.json()["watch"]["status"] == "cancelled"
        middle = (await api.http.get(f"/v1/imports/{found['id']}", headers=api.auth())).json()
        assert middle["import"]["jobs"] == {
            "total": 2,
            "active": 1,
            "completed": 0,
            "partially_completed": 0,
            "failed": 0,
            "cancelled": 1,
        }
        assert middle["import"]["ended_at"] is None
        api.clock.advance(minutes=1)
        await api.http.delete(f"/v1/watches/{watches[1]['id']}", headers=api.auth())
        # The same again changes nothing: the watch has ended, and the import with it.
        await api.http.delete(f"/v1/watches/{watches[1]['id']}", headers=api.auth())
        ended = (await api.http.get(f"/v1/imports/{found['id']}", headers=api.auth())).json()
        # Every job of it was cancelled, so it ended cancelled.
        assert ended["import"]["status"] == "cancelled"
        assert ended["import"]["ended_at"] == "2026-11-28T12:01:00Z"
        assert ended["import"]["jobs"]["cancelled"] == 2
        assert await _event_types(api, found["id"]) == ["import.cancelled"]


async def test_api_cancelling_a_watch_of_an_open_import_keeps_it_open(sqlite_url: str) -> None:
    async with running_api(sqlite_url) as api:
        found = await _import(api)
        [watch] = (await _add(api, found["id"], _jobs(1))).json()["watches"]
        await api.http.delete(f"/v1/watches/{watch['id']}", headers=api.auth())
        after = (await api.http.get(f"/v1/imports/{found['id']}", headers=api.auth())).json()
        assert (after["import"]["status"], after["import"]["jobs"]["cancelled"]) == ("open", 1)
        assert await _event_types(api, found["id"]) == []
        closed = await api.http.post(f"/v1/imports/{found['id']}/close", headers=api.auth())
        assert closed.json()["import"]["status"] == "cancelled"
        assert await _event_types(api, found["id"]) == ["import.cancelled"]
