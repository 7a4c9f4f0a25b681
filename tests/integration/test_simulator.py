"""The upstream simulator over real HTTP on loopback, driven by a fake clock."""

from __future__ import annotations

import argparse
import contextlib
import json
import ssl
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest

from bridge.devtools.localserver import serving
from bridge.devtools.simulator import (
    KeyLimits,
    Simulator,
    SimulatorSettings,
    add_arguments,
    create_simulator,
    settings_from_args,
)
from tests.clock import T0, FakeClock

KEY = "aigen_test_simulator"
OTHER = "aigen_live_other"
START = T0
JOB_STATUSES = {"queued", "processing", "completed", "partially_completed", "failed", "cancelled"}
ITEM_STATUSES = {"queued", "processing", "completed", "failed", "cancelled"}
# Loading the CA bundle for each client costs ~0.3 s; these clients only speak plain HTTP.
PLAIN_HTTP = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


@dataclass
class Upstream:
    sim: Simulator
    client: httpx.AsyncClient
    clock: FakeClock
    url: str
    calls: list[str] = field(default_factory=list)

    async def job(self, job_id: str, *, key: str = KEY) -> httpx.Response:
        return await self.client.get(f"/product-photo-jobs/{job_id}", headers=_auth(key))


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@contextlib.asynccontextmanager
async def upstream(**settings: Any) -> AsyncIterator[Upstream]:
    clock = FakeClock()
    settings.setdefault("keys", {KEY: KeyLimits(), OTHER: KeyLimits()})
    app = create_simulator(SimulatorSettings(now=clock, **settings))
    async with serving(app) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=5, verify=PLAIN_HTTP) as client:
            yield Upstream(app.state.simulator, client, clock, server.url)


def assert_job_schema(job: dict[str, Any]) -> None:
    """Check a ProductPhotoJob against the upstream OpenAPI text: required fields and types."""
    uuid.UUID(job["id"])
    assert job["status"] in JOB_STATUSES
    assert isinstance(job["total_items"], int) and job["total_items"] >= 1
    assert isinstance(job["credits_reserved"], int) and job["credits_reserved"] >= 0
    assert isinstance(job["sandbox"], bool)
    for name in ("completed_items", "failed_items", "credits_used"):
        assert isinstance(job[name], int) and job[name] >= 0
    assert isinstance(job["items"], list)
    for item in job["items"]:
        uuid.UUID(item["id"])
        assert item["status"] in ITEM_STATUSES
        for name in ("credits_reserved", "credits_used"):
            assert isinstance(item[name], int) and item[name] >= 0
        for name in ("external_id", "error_code", "error_message"):
            assert item[name] is None or isinstance(item[name], str)
        for name in ("result_url", "thumbnail_url"):
            assert item[name] is None or httpx.URL(item[name]).scheme == "https"


def assert_counters_consistent(job: dict[str, Any]) -> None:
    statuses = [i["status"] for i in job["items"]]
    assert job["total_items"] == len(statuses)
    assert job["completed_items"] == statuses.count("completed")
    assert job["failed_items"] == statuses.count("failed")
    assert job["credits_used"] == sum(i["credits_used"] for i in job["items"])


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert error["request_id"] == response.headers["x-request-id"]


async def test_simulator_job_matches_upstream_schema():
    async with upstream(failure_rate=0.5) as up:
        job_id = up.sim.create_job(KEY, total_items=3, external_ids=["sku-1", None, "sku-3"])
        for _ in range(5):
            response = await up.job(job_id)
            assert response.status_code == 200
            body = response.json()
            assert set(body) == {"job", "request_id"}
            assert body["request_id"] == response.headers["x-request-id"]
            assert_job_schema(body["job"])
            assert_counters_consistent(body["job"])
            up.clock.advance(2)
        assert [i["external_id"] for i in body["job"]["items"]] == ["sku-1", None, "sku-3"]
        assert body["job"]["sandbox"] is True
        other = await up.job(up.sim.create_job(OTHER, total_items=1), key=OTHER)
        assert other.json()["job"]["sandbox"] is False


async def test_simulator_progresses_item_by_item_in_time():
    async with upstream(queue_delay_s=10, seconds_per_item=5, failure_rate=0) as up:
        job_id = up.sim.create_job(KEY, total_items=2)
        timeline = []
        for at in (0, 9.9, 10, 14.9, 15, 19.9, 20, 100):
            up.clock.moment = START + timedelta(seconds=at)
            job = (await up.job(job_id)).json()["job"]
            assert_counters_consistent(job)
            timeline.append((job["status"], *(i["status"] for i in job["items"])))
    assert timeline == [
        ("queued", "queued", "queued"),
        ("queued", "queued", "queued"),
        ("processing", "processing", "queued"),
        ("processing", "processing", "queued"),
        ("processing", "completed", "processing"),
        ("processing", "completed", "processing"),
        ("completed", "completed", "completed"),
        ("completed", "completed", "completed"),
    ]


@pytest.mark.parametrize(
    ("failure_rate", "final", "completed", "failed"),
    [(0.0, "completed", 3, 0), (0.5, "partially_completed", 1, 2), (1.0, "failed", 0, 3)],
)
async def test_simulator_reaches_each_final_status(failure_rate, final, completed, failed):
    async with upstream(failure_rate=failure_rate, seed=0) as up:
        job_id = up.sim.create_job(KEY, total_items=3)
        up.clock.advance(1 + 3 * 2)
        job = (await up.job(job_id)).json()["job"]
    assert (job["status"], job["completed_items"], job["failed_items"]) == (
        final,
        completed,
        failed,
    )
    assert job["credits_used"] == completed
    for item in job["items"]:
        if item["status"] == "completed":
            assert item["credits_used"] == 1
            assert item["result_url"] and item["thumbnail_url"]
            assert item["error_code"] is None and item["error_message"] is None
        else:
            assert item["status"] == "failed"
            assert item["credits_used"] == 0
            assert item["result_url"] is None and item["thumbnail_url"] is None
            assert item["error_code"] in {
                "product_not_detected",
                "image_unreadable",
                "image_too_small",
            }
            assert item["error_message"].endswith(".")


async def _final_job(seed: int) -> dict[str, Any]:
    async with upstream(failure_rate=0.5, seed=seed) as up:
        job_id = up.sim.create_job(KEY, total_items=20)
        up.clock.advance(3600)
        response = await up.job(job_id)
        return response.json()["job"]


async def test_simulator_failures_are_deterministic():
    first, again, other_seed = await _final_job(7), await _final_job(7), await _final_job(8)
    assert first == again
    fates = [i["status"] for i in first["items"]]
    assert {"completed", "failed"} <= set(fates)
    assert fates != [i["status"] for i in other_seed["items"]]


async def test_simulator_rejects_bad_credentials_and_ids():
    async with upstream() as up:
        mine = up.sim.create_job(KEY, total_items=1)
        theirs = up.sim.create_job(OTHER, total_items=1)
        assert_error(await up.client.get(f"/product-photo-jobs/{mine}"), 401, "invalid_api_key")
        assert_error(await up.job(mine, key="aigen_test_nope"), 401, "invalid_api_key")
        assert_error(await up.job(str(uuid.uuid4())), 404, "job_not_found")
        assert_error(await up.job(theirs), 404, "job_not_found")
        assert_error(await up.job("not-a-uuid"), 400, "invalid_request")
        assert_error(await up.client.get("/no-such-route", headers=_auth(KEY)), 404, "not_found")
        assert (await up.job(mine)).status_code == 200


async def test_simulator_echoes_request_id():
    async with upstream() as up:
        job_id = up.sim.create_job(KEY, total_items=1)
        headers = {**_auth(KEY), "X-Request-Id": "corr-42"}
        echoed = await up.client.get(f"/product-photo-jobs/{job_id}", headers=headers)
        made = await up.job(job_id)
    assert echoed.headers["x-request-id"] == echoed.json()["request_id"] == "corr-42"
    assert made.headers["x-request-id"] == made.json()["request_id"] != "corr-42"


async def _list(up: Upstream, **params: Any) -> httpx.Response:
    return await up.client.get("/product-photo-jobs", params=params, headers=_auth(KEY))


async def test_simulator_lists_jobs_newest_first_with_cursor():
    async with upstream(failure_rate=0) as up:
        ids = []
        for _ in range(2):
            ids.append(up.sim.create_job(KEY, total_items=1))
            up.clock.advance(60)
        # Three at one instant, so a page boundary falls between equal clock times.
        ids += [up.sim.create_job(KEY, total_items=1) for _ in range(3)]
        up.sim.create_job(OTHER, total_items=1)
        seen, cursor, pages = [], None, 0
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            body = (await _list(up, **params)).json()
            seen += [summary["id"] for summary in body["jobs"]]
            pages += 1
            cursor = body["next_cursor"]
            if cursor is None:
                break
            assert cursor == body["jobs"][-1]["created_at"]
        everything = (await _list(up, limit=100)).json()
    assert seen == ids[::-1]
    assert pages == 3
    assert everything["next_cursor"] is None
    for summary in everything["jobs"]:
        assert set(summary) == {
            "id",
            "status",
            "total_items",
            "credits_reserved",
            "sandbox",
            "created_at",
        }


async def test_simulator_lists_jobs_by_status():
    async with upstream(failure_rate=0, queue_delay_s=1, seconds_per_item=2) as up:
        done = up.sim.create_job(KEY, total_items=1)
        up.clock.advance(10)
        queued = up.sim.create_job(KEY, total_items=1)
        cancelled = up.sim.create_job(KEY, total_items=1)
        up.sim.set_job(cancelled, {"id": cancelled, "status": "cancelled", "total_items": 1})
        by_status = {
            status: [j["id"] for j in (await _list(up, status=status)).json()["jobs"]]
            for status in ("completed", "queued", "cancelled", "failed")
        }
        bad = [
            await _list(up, status="nope"),
            await _list(up, limit=0),
            await _list(up, cursor="x"),
        ]
    assert by_status == {
        "completed": [done],
        "queued": [queued],
        "cancelled": [cancelled],
        "failed": [],
    }
    for response in bad:
        assert_error(response, 400, "invalid_request")


def _images(count: int, *, prefix: str = "sku") -> list[dict[str, Any]]:
    return [
        {"source_url": f"https://shop.example/raw/{prefix}-{n}.jpg", "external_id": f"{prefix}-{n}"}
        for n in range(count)
    ]


async def _create(
    up: Upstream, images: Any, *, key: str = KEY, idem: str | None = "order-0001", **fields: Any
) -> httpx.Response:
    headers = {**_auth(key), **({"Idempotency-Key": idem} if idem else {})}
    body = {"images": images, **fields}
    return await up.client.post("/product-photo-jobs", json=body, headers=headers)


async def test_simulator_creates_jobs_idempotently():
    images = [{"source_url": "https://shop.example/a.jpg", "external_id": "sku-a"}]
    images.append({"source_url": "https://b.example/b.png"})
    full = {
        "operation": "studio_packshot",
        "preset": "single_product_white_background",
        "preservation_level": "balanced",
        "instructions": "Keep the label readable.",
        "webhook_url": "https://shop.example/hooks/aigen",
    }
    async with upstream(keys={KEY: KeyLimits(max_active_jobs=5)}) as up:
        created = await _create(up, images, **full)
        again = await _create(up, images, **full)
        reordered = await up.client.post(  # the same body, its keys in another order
            "/product-photo-jobs",
            content=json.dumps({**full, "images": images}, sort_keys=True),
            headers={**_auth(KEY), "Idempotency-Key": "order-0001"},
        )
        second = await _create(up, images, idem="order-0002", **full)
        conflicts = [
            await _create(up, images[:1], **full),
            await _create(up, images, **{**full, "preservation_level": "strict"}),
            await _create(up, images),  # the defaults differ from the first request's fields
        ]
        job = created.json()["job"]
        fetched = (await up.job(job["id"])).json()["job"]
    assert created.status_code == 201
    assert again.status_code == reordered.status_code == 200  # the existing job, returned again
    assert second.status_code == 201
    assert_job_schema(job)
    assert job["status"] == "queued" and job["total_items"] == 2
    assert [i["external_id"] for i in job["items"]] == ["sku-a", None]
    assert again.json()["job"]["id"] == reordered.json()["job"]["id"] == job["id"] == fetched["id"]
    assert second.json()["job"]["id"] != job["id"]
    assert created.json()["remaining_paid_credits"] == 1000  # sandbox keys spend nothing
    for conflict in conflicts:
        assert_error(conflict, 409, "idempotency_conflict")


async def test_simulator_live_keys_spend_paid_credits():
    async with upstream(keys={OTHER: KeyLimits(max_active_jobs=5)}) as up:
        first = await _create(up, _images(3), key=OTHER)
        second = await _create(up, _images(2), key=OTHER, idem="order-0002")
    assert first.json()["remaining_paid_credits"] == 997
    assert second.json()["remaining_paid_credits"] == 995


@pytest.mark.parametrize(
    ("body", "idem", "names"),
    [
        ({"images": _images(1)}, None, "Idempotency-Key"),
        ({"images": _images(1)}, "short", "Idempotency-Key"),
        ({"images": _images(1)}, "k" * 161, "Idempotency-Key"),
        ({"images": []}, "order-0001", "images"),
        ({"images": _images(21)}, "order-0001", "images"),
        ({}, "order-0001", "images"),
        ({"images": [{"url": "https://a.example/a.jpg"}]}, "order-0001", "images[0].source_url"),
        ({"images": [{"source_url": "ftp://a/b.jpg"}]}, "order-0001", "images[0].source_url"),
        ({"images": [{"source_url": "not a url"}]}, "order-0001", "images[0].source_url"),
        (
            {"images": [{"source_url": "https://a.example/x", "external_id": ""}]},
            "order-0001",
            "images[0].external_id",
        ),
        ({"images": _images(1), "operation": "paint_it"}, "order-0001", "operation"),
        ({"images": _images(1), "preset": "nope"}, "order-0001", "preset"),
        ({"images": _images(1), "preservation_level": "loose"}, "order-0001", "preservation_level"),
        ({"images": _images(1), "instructions": ""}, "order-0001", "instructions"),
        ({"images": _images(1), "instructions": "x" * 4001}, "order-0001", "instructions"),
        ({"images": _images(1), "webhook_url": "hooks"}, "order-0001", "webhook_url"),
        (
            {"images": _images(1), "webhook_url": "https://h.example/" + "x" * 2048},
            "order-0001",
            "webhook_url",
        ),
        ({"images": _images(1), "colour": "red"}, "order-0001", "colour"),
        ([1, 2], "order-0001", "body"),
    ],
)
async def test_simulator_rejects_bad_creations_naming_the_field(body, idem, names):
    async with upstream() as up:
        headers = {**_auth(KEY), **({"Idempotency-Key": idem} if idem else {})}
        response = await up.client.post("/product-photo-jobs", json=body, headers=headers)
        assert_error(response, 400, "invalid_request")
        assert response.json()["error"]["message"].startswith(f"{names}: ")
        assert up.sim.stats()["jobs"] == {}


async def test_simulator_rejects_a_body_that_is_not_json():
    async with upstream() as up:
        response = await up.client.post(
            "/product-photo-jobs",
            content=b"{not json",
            headers={**_auth(KEY), "Idempotency-Key": "order-0001"},
        )
    assert_error(response, 400, "invalid_request")
    assert response.json()["error"]["message"].startswith("body: ")


async def test_simulator_lists_operations_and_presets():
    async with upstream() as up:
        operations = await up.client.get("/product-photo-operations", headers=_auth(KEY))
        anonymous = await up.client.get("/product-photo-operations")
        presets = await up.client.get("/product-photo-presets")  # public, as upstream's is
        preset_ids = [p["id"] for p in presets.json()["presets"]]
        operation_ids = [o["id"] for o in operations.json()["operations"]]
        named = await _create(up, _images(1), operation=operation_ids[-1], preset=preset_ids[-1])
        polls = up.sim.stats()["keys"][KEY]["poll_count"]
    assert operations.status_code == presets.status_code == 200
    assert operations.json()["request_id"] == operations.headers["x-request-id"]
    assert_error(anonymous, 401, "invalid_api_key")
    assert "studio_packshot" in operation_ids and len(operation_ids) == 6
    for operation in operations.json()["operations"]:
        assert set(operation) == {"id", "name", "credits_per_image", "description"}
        assert (
            isinstance(operation["credits_per_image"], int) and operation["credits_per_image"] > 0
        )
    assert "single_product_white_background" in preset_ids
    for preset in presets.json()["presets"]:
        assert set(preset) == {"id", "name", "description"}
    assert named.status_code == 201
    assert polls == 0  # metadata requests are not polls


async def test_simulator_limits_polls_per_rolling_hour():
    async with upstream(keys={KEY: KeyLimits(polls_per_hour=3)}) as up:
        job_id = up.sim.create_job(KEY, total_items=1)
        remaining = []
        for _ in range(3):
            response = await up.job(job_id)
            assert response.status_code == 200
            assert response.headers["x-ratelimit-limit"] == "3"
            reset = int(response.headers["x-ratelimit-reset"])
            assert reset == int((START + timedelta(hours=1)).timestamp())
            remaining.append(int(response.headers["x-ratelimit-remaining"]))
            up.clock.advance(600)
        limited = await up.job(job_id)
        assert_error(limited, 429, "rate_limited")
        assert int(limited.headers["retry-after"]) == 3600 - 1800
        assert limited.headers["x-ratelimit-remaining"] == "0"
        assert_error(await _list(up), 429, "rate_limited")  # the list spends the same budget
        up.clock.advance(1800)  # the first poll leaves the window
        recovered = await up.job(job_id)
        stats = up.sim.stats()
    assert remaining == [2, 1, 0]
    assert recovered.status_code == 200
    assert recovered.headers["x-ratelimit-remaining"] == "0"
    assert stats["keys"][KEY]["poll_count"] == 4
    assert stats["keys"][KEY]["rate_limited"] == 2
    assert stats["jobs"][job_id] == {"gets": 4, "rate_limited": 1}


async def test_simulator_without_limits_never_answers_429():
    async with upstream(keys={KEY: KeyLimits(polls_per_hour=1)}, enforce_limits=False) as up:
        job_id = up.sim.create_job(KEY, total_items=1)
        statuses = [(await up.job(job_id)).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]


async def test_simulator_limits_active_jobs_per_key():
    async with upstream(queue_delay_s=1, seconds_per_item=2) as up:
        first = await _create(up, _images(3), idem="order-000a")
        busy = await _create(up, _images(1), idem="order-000b")
        up.clock.advance(1 + 3 * 2)
        free = await _create(up, _images(1), idem="order-000b")
    assert first.status_code == 201
    assert_error(busy, 429, "concurrency_limit")
    assert busy.headers["retry-after"] == "7"
    assert free.status_code == 201


async def test_simulator_limits_active_jobs_per_account():
    keys = {KEY: KeyLimits(max_active_jobs=5), OTHER: KeyLimits(max_active_jobs=5)}
    async with upstream(keys=keys, accounts={"shop": [KEY, OTHER]}) as up:
        responses = [
            await _create(up, _images(1), key=key, idem=idem)
            for key, idem in ((KEY, "order-001"), (OTHER, "order-002"), (KEY, "order-003"))
        ]
    assert [r.status_code for r in responses] == [201, 201, 429]
    assert_error(responses[2], 429, "concurrency_limit")


@pytest.mark.parametrize(
    ("limits", "sizes"),
    [
        (KeyLimits(max_active_jobs=9, creations_per_hour=2), [1, 1, 1]),
        (KeyLimits(max_active_jobs=9, images_per_hour=5), [3, 2, 1]),
    ],
)
async def test_simulator_limits_creations_per_hour(limits, sizes):
    async with upstream(keys={KEY: limits}) as up:
        responses = []
        for index, size in enumerate(sizes):
            responses.append(await _create(up, _images(size), idem=f"order-{index:04d}"))
            up.clock.advance(60)
        up.clock.advance(3600 - 60 * len(sizes))
        later = await _create(up, _images(sizes[-1]), idem="order-later")
    assert [r.status_code for r in responses] == [201, 201, 429]
    assert_error(responses[2], 429, "rate_limited")
    assert responses[2].headers["retry-after"] == str(3600 - 120)
    assert later.status_code == 201


async def test_simulator_plays_scripted_responses_then_resumes():
    async with upstream(failure_rate=0) as up:
        job_id = up.sim.create_job(KEY, total_items=1)
        scripted_job = {"id": job_id, "status": "processing", "total_items": 1, "items": []}
        up.sim.script(
            job_id,
            [
                {"status": 500},
                {"status": 429, "retry_after": 30},
                {"status": 401},
                {"status": 404},
                {"garbage": True},
                {"job": scripted_job},
            ],
        )
        responses = [await up.job(job_id) for _ in range(7)]
        stats = up.sim.stats()
    assert_error(responses[0], 500, "internal_error")
    assert_error(responses[1], 429, "rate_limited")
    assert responses[1].headers["retry-after"] == "30"
    assert_error(responses[2], 401, "invalid_api_key")
    assert_error(responses[3], 404, "job_not_found")
    assert responses[4].status_code == 200
    with pytest.raises(ValueError):
        responses[4].json()
    assert responses[5].json()["job"] == scripted_job
    assert responses[6].json()["job"] == scripted_job  # the scripted state stays frozen
    assert all("x-ratelimit-remaining" in r.headers for r in responses)
    assert stats["jobs"][job_id]["gets"] == 7
    assert stats["keys"][KEY]["poll_count"] == 7


async def test_simulator_scripted_delay_times_out_the_client():
    async with upstream() as up:
        job_id = up.sim.create_job(KEY, total_items=1)
        up.sim.script(job_id, [{"delay_s": 0.5}])
        with pytest.raises(httpx.ReadTimeout):
            await up.client.get(f"/product-photo-jobs/{job_id}", headers=_auth(KEY), timeout=0.1)
        after = await up.job(job_id)
    assert after.status_code == 200


async def test_simulator_key_script_applies_to_any_job_of_that_key():
    async with upstream() as up:
        first = up.sim.create_job(KEY, total_items=1)
        second = up.sim.create_job(KEY, total_items=1)
        theirs = up.sim.create_job(OTHER, total_items=1)
        up.sim.script(None, [{"status": 503}, {"status": 503}], api_key=KEY)
        up.sim.script(second, [{"status": 500}])
        statuses = [
            (await up.job(theirs, key=OTHER)).status_code,
            (await up.job(second)).status_code,  # the job's own script goes first
            (await up.job(first)).status_code,
            (await up.job(second)).status_code,
            (await up.job(first)).status_code,
        ]
    assert statuses == [200, 500, 503, 503, 200]


async def test_simulator_set_job_freezes_the_state():
    async with upstream() as up:
        job_id = up.sim.create_job(KEY, total_items=2)
        frozen = {"id": job_id, "total_items": 2, "items": [], "extra": {"new": 1}}  # no status
        up.sim.set_job(job_id, frozen)
        up.clock.advance(3600)
        body = (await up.job(job_id)).json()
        summaries = (await _list(up)).json()["jobs"]
        with pytest.raises(KeyError):
            up.sim.set_job(str(uuid.uuid4()), frozen)
    assert body["job"] == frozen
    assert "status" not in summaries[0]


async def test_simulator_control_endpoints_over_http():
    async with upstream(failure_rate=0) as up:
        created = await up.client.post(
            "/_sim/jobs", json={"api_key": KEY, "total_items": 2, "external_ids": ["a", "b"]}
        )
        job_id = created.json()["job_id"]
        fixed_id = str(uuid.uuid4())
        fixed = await up.client.post("/_sim/jobs", json={"total_items": 1, "job_id": fixed_id})
        state = {"id": job_id, "status": "failed", "total_items": 2, "items": []}
        put = await up.client.put(f"/_sim/jobs/{job_id}", json=state)
        scripted = await up.client.post(
            "/_sim/script", json={"job_id": job_id, "responses": [{"status": 500}]}
        )
        polled = [(await up.job(job_id)).status_code, (await up.job(job_id)).json()["job"]]
        peeked = await up.client.get(f"/_sim/jobs/{job_id}")
        stats = (await up.client.get("/_sim/stats")).json()
        errors = [
            await up.client.post("/_sim/jobs", json={"total_items": 0}),
            await up.client.post("/_sim/script", json={"responses": [{"bogus": 1}]}),
            await up.client.put(f"/_sim/jobs/{uuid.uuid4()}", json=state),
        ]
        reset = await up.client.post("/_sim/reset")
        after_reset = await up.job(job_id)
    assert created.status_code == fixed.status_code == 201
    assert created.json()["job"]["items"][1]["external_id"] == "b"
    assert fixed.json()["job_id"] == fixed_id
    assert put.status_code == 200
    assert scripted.json()["queued"] == 1
    assert polled == [500, state]
    assert peeked.json()["job"] == state
    assert stats["jobs"][job_id]["gets"] == 2
    assert len(stats["keys"][KEY]["polls"]) == 2
    assert stats["keys"][KEY]["polls"][0] == "2026-11-28T12:00:00.000000Z"
    assert [e.status_code for e in errors] == [400, 400, 404]
    assert reset.status_code == 200
    assert_error(after_reset, 404, "job_not_found")


async def test_simulator_reset_restores_determinism():
    async with upstream() as up:
        first = up.sim.create_job(KEY, total_items=1)
        up.sim.reset()
        assert up.sim.create_job(KEY, total_items=1) == first
        assert up.sim.stats()["keys"][KEY]["poll_count"] == 0


def test_simulator_settings_from_args():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    defaults = settings_from_args(parser.parse_args([]))
    argv = """--key aigen_test_a --key aigen_test_b --polls-per-hour 60 --max-active-jobs 2
        --seconds-per-item 0.5 --queue-delay 0 --failure-rate 0.25 --seed 3 --no-limits
        --port 9000"""
    custom_args = parser.parse_args(argv.split())
    custom = settings_from_args(custom_args)
    assert defaults.keys == {KEY: KeyLimits()}
    assert defaults.enforce_limits and defaults.seconds_per_item == 2.0
    assert set(custom.keys) == {"aigen_test_a", "aigen_test_b"}
    assert custom.keys["aigen_test_a"] == KeyLimits(polls_per_hour=60, max_active_jobs=2)
    assert (custom.seconds_per_item, custom.queue_delay_s) == (0.5, 0)
    assert (custom.failure_rate, custom.seed, custom.enforce_limits) == (0.25, 3, False)
    assert (custom_args.host, custom_args.port) == ("127.0.0.1", 9000)
