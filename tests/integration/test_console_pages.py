"""The console's pages over a real server: every answer carries the CSP, no page shows a secret,
each page shows what the store holds, and hostile strings are shown only as escaped text."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.integration.api_support import NOW, seed_event
from tests.integration.console_support import (
    ATTRIBUTE,
    HOSTILE,
    SCRIPT,
    SECRETS,
    Console,
    add_jobs,
    assert_shown_escaped,
    browser,
    new_import,
    new_watch,
    running_console,
    seed_attempt,
    seed_failures,
    seed_polls,
    set_delivery,
    set_job,
    set_progress,
    unknown_id,
)

CSV_HEADER = "external_id,job_id,item_id,error_code,error_message\r\n"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/bridge.db"


def _section(page: str, heading_id: str) -> str:
    """The HTML of the <section> labelled by `heading_id`."""
    found = re.search(rf'<section aria-labelledby="{heading_id}">(.*?)</section>', page, re.S)
    assert found is not None, heading_id
    return found.group(1)


def _card(page: str, account: str) -> str:
    """The overview's budget card of one account."""
    found = re.search(rf"<article class=\"card\">\s*<h3>{account}</h3>(.*?)</article>", page, re.S)
    assert found is not None, account
    return found.group(1)


def _failure_rows(import_job: str, n: int) -> list[dict[str, str]]:
    return [
        {
            "job_id": import_job,
            "item_id": f"item-{i:04d}",
            "external_id": f"sku-{i:04d}",
            "error_code": "unreadable_image",
            "error_message": f"image {i} unreadable",
        }
        for i in range(n)
    ]


async def _seeded(console: Console) -> tuple[str, str]:
    """An import with a job and a failure, and a polled watch with an event and deliveries."""
    api = console.api
    import_id = await new_import(api, name="Winter catalog")
    [job] = await add_jobs(api, import_id, 1)
    await seed_failures(console.store, import_id, _failure_rows(job["job_id"], 1))
    watch = await new_watch(api, metadata={"order": "A-1"})
    await set_job(
        console.store,
        job_id=watch["job_id"],
        items=[{"id": "item-1", "external_id": "sku-1", "thumbnail_url": "https://x/1.png"}],
    )
    await seed_event(
        console.store,
        watch_id=watch["id"],
        sequence=1,
        destinations={"ops-hook": "dead", "catalog-slack": "delivered"},
    )
    return import_id, watch["id"]


async def test_console_pages_send_the_csp_and_show_no_secret(sqlite_url: str) -> None:
    async with running_console(sqlite_url) as console:
        import_id, watch_id = await _seeded(console)
        pages = {
            "/console/": 200,
            "/console/imports": 200,
            f"/console/imports/{import_id}": 200,
            f"/console/imports/{import_id}/failures.csv": 200,
            f"/console/watches/{watch_id}": 200,
            "/console/deliveries": 200,
            "/console/deliveries?status=dead&channel=ops-hook": 200,
            "/console/channels": 200,
            f"/console/watches/{unknown_id('wat')}": 404,
            f"/console/imports/{unknown_id('imp')}": 404,
            "/console/watches/not-an-id": 404,
            "/console/nope": 404,
            "/console/static/console.css": 200,
            "/console/static/htmx.min.js": 200,
        }
        answers: dict[str, httpx.Response] = {}
        for path, code in pages.items():
            answers[path] = await console.http.get(path)
            assert answers[path].status_code == code, path
        async with browser(console.api) as signed_out:
            answers["login"] = await signed_out.get("/console/login")
            answers["redirect"] = await signed_out.get("/console/channels")
            answers["hx"] = await signed_out.get("/console/", headers={"HX-Request": "true"})
        # A refused form is answered inside the console's headers too.
        answers["403"] = await console.http.post("/console/deliveries/redeliver", data={})
        assert answers["403"].status_code == 403
    for path, response in answers.items():
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp, path
        assert "frame-ancestors 'none'" in csp, path
        assert response.headers["x-frame-options"] == "DENY", path
        for secret in SECRETS:
            assert secret not in response.text, (path, secret)
    assert answers["/console/"].headers["cache-control"] == "no-store"
    assert "no-store" not in answers["/console/static/console.css"].headers.get("cache-control", "")
    # The pages name only the console's own assets: nothing from another origin.
    for path in ("/console/", f"/console/watches/{watch_id}", "login"):
        sources = re.findall(r'(?:src|href)="([^"]*)"', answers[path].text)
        assert sources, path
        assert all(s.startswith(("/console/", "#")) for s in sources), (path, sources)


async def test_console_overview_shows_budgets_watches_and_running_imports(
    sqlite_url: str,
) -> None:
    async with running_console(sqlite_url) as console:
        api = console.api
        recent = [NOW - timedelta(minutes=m) for m in range(1, 8)]
        stale = [NOW - timedelta(hours=2, minutes=m) for m in range(3)]
        await seed_polls(console.store, account="main", ats=recent + stale)
        await seed_polls(console.store, account="second", ats=[NOW - timedelta(minutes=5)])
        watched = await new_watch(api)
        ended = await new_watch(api)
        assert (await api.http.delete(f"/v1/watches/{ended['id']}", headers=api.auth())).is_success
        running = await new_import(api, name="Spring catalog")
        await add_jobs(api, running, 2)
        await set_progress(console.store, running, total=40, completed=10, failed=2)
        page = (await console.page("/console/")).text
    main = _card(page, "main")
    assert "<strong>7</strong> / 120 polls in the last hour" in main
    assert 'aria-valuenow="6"' in main  # 7 of 120
    # The watch and the import's two jobs; the cancelled watch's job no longer counts.
    assert "Active jobs</dt><dd>3</dd>" in main
    assert "<strong>1</strong> / 120 polls in the last hour" in _card(page, "second")
    watches = _section(page, "watches-h")
    assert f'<a href="/console/watches/{watched["id"]}" class="mono">{watched["job_id"]}</a>' in (
        watches
    )
    assert ended["job_id"] not in watches
    imports = _section(page, "imports-h")
    assert f'<a href="/console/imports/{running}">Spring catalog</a>' in imports
    assert "12 / 40 images" in imports
    assert 'aria-valuenow="30"' in imports


async def test_console_import_page_shows_progress_jobs_and_failures(sqlite_url: str) -> None:
    async with running_console(sqlite_url) as console:
        api = console.api
        import_id = await new_import(api, name="Fall catalog", metadata={"season": "fall"})
        jobs = await add_jobs(api, import_id, 3)
        await set_progress(console.store, import_id, total=20, completed=9, failed=1)
        await seed_failures(console.store, import_id, _failure_rows(jobs[0]["job_id"], 3))
        page = (await console.page(f"/console/imports/{import_id}")).text
        empty_id = await new_import(api, name="Empty catalog")
        empty = (await console.page(f"/console/imports/{empty_id}")).text
    assert "<h1>Fall catalog</h1>" in page
    assert "<strong>50%</strong> · 10 of 20 images finished" in page
    assert "<dt>season</dt><dd>fall</dd>" in page
    for job in jobs:
        assert f'<a href="/console/watches/{job["id"]}" class="mono">{job["job_id"]}</a>' in page
    failures = _section(page, "failures-h")
    assert f'href="/console/imports/{import_id}/failures.csv"' in failures
    for i in range(3):
        assert f"sku-{i:04d}" in failures
        assert f"image {i} unreadable" in failures
    assert "No failed images." in _section(empty, "failures-h")
    assert "failures.csv" not in empty


async def test_console_import_failures_csv_streams_every_row(sqlite_url: str) -> None:
    count = 1200
    async with running_console(sqlite_url) as console:
        import_id = await new_import(console.api)
        job_id = str(uuid.uuid4())
        await seed_failures(console.store, import_id, _failure_rows(job_id, count))
        response = await console.http.get(f"/console/imports/{import_id}/failures.csv")
        async with browser(console.api) as signed_out:
            refused = await signed_out.get(f"/console/imports/{import_id}/failures.csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="{import_id}-failures.csv"'
    )
    assert response.text.startswith(CSV_HEADER)
    rows = list(csv.reader(io.StringIO(response.text, newline="")))
    assert len(rows) == count + 1
    assert rows[1] == ["sku-0000", job_id, "item-0000", "unreadable_image", "image 0 unreadable"]
    assert rows[-1][0] == f"sku-{count - 1:04d}"
    assert refused.status_code == 303
    assert refused.headers["location"].startswith("/console/login?next=")


async def test_console_watch_page_shows_items_events_and_attempts(sqlite_url: str) -> None:
    async with running_console(sqlite_url) as console:
        watch = await new_watch(console.api, metadata={"order": "A-1"})
        await set_job(
            console.store,
            job_id=watch["job_id"],
            items=[
                {"id": "item-1", "external_id": "sku-1", "status": "completed"},
                {
                    "id": "item 2/x",
                    "external_id": "sku-2",
                    "status": "failed",
                    "error_code": "nsfw",
                    "error_message": "image refused",
                },
            ],
        )
        _, first = await seed_event(
            console.store, watch_id=watch["id"], sequence=1, destinations={"ops-hook": "dead"}
        )
        _, second = await seed_event(
            console.store,
            watch_id=watch["id"],
            sequence=2,
            destinations={"catalog-slack": "delivered"},
        )
        await seed_attempt(
            console.store, delivery_id=first["ops-hook"], status_code=500, error=None
        )
        await seed_attempt(
            console.store, delivery_id=first["ops-hook"], status_code=None, error="connect timeout"
        )
        page = (await console.page(f"/console/watches/{watch['id']}")).text
    items = _section(page, "items-h")
    base = f"/console/watches/{watch['id']}/items"
    assert f'<img src="{base}/item-1/thumbnail" alt="Thumbnail of sku-1"' in items
    assert f'<img src="{base}/item%202%2Fx/thumbnail"' in items  # a slash stays inside the id
    assert "nsfw" in items and "image refused" in items
    assert "1 of 2 images done, 1 failed" in page
    assert "<dt>order</dt><dd>A-1</dd>" in page
    events = _section(page, "events-h")
    assert events.count("<strong>job.processing</strong>") == 2
    assert '<span class="seq">#1</span>' in events and '<span class="seq">#2</span>' in events
    deliveries = _section(page, "deliveries-h")
    attempts = re.findall(r'<ol class="attempts">(.*?)</ol>', deliveries, re.S)
    assert len(attempts) == 1
    assert "HTTP 500" in attempts[0]
    assert 'no answer · <span class="bad">connect timeout</span>' in attempts[0]
    assert f'action="/console/deliveries/{first["ops-hook"]}/redeliver"' in deliveries
    assert f"/console/deliveries/{second['catalog-slack']}/redeliver" not in deliveries


async def test_console_pages_escape_hostile_strings(sqlite_url: str) -> None:
    async with running_console(sqlite_url) as console:
        api = console.api
        metadata = {"script": SCRIPT, "attribute": ATTRIBUTE}
        import_id = await new_import(api, name=SCRIPT, metadata=metadata)
        [job] = await add_jobs(api, import_id, 1)
        await set_progress(console.store, import_id, total=2, completed=0, failed=2)
        await seed_failures(
            console.store,
            import_id,
            [
                {
                    "job_id": job["job_id"],
                    "item_id": f"item-{i}",
                    "external_id": value,
                    "error_code": "unreadable_image",
                    "error_message": value,
                }
                for i, value in enumerate(HOSTILE)
            ],
        )
        watch = await new_watch(api, metadata=metadata)
        await set_job(
            console.store,
            job_id=watch["job_id"],
            items=[
                {
                    "id": f"item-{i}",
                    "external_id": value,
                    "status": "failed",
                    "error_message": value,
                }
                for i, value in enumerate(HOSTILE)
            ],
        )
        _, ids = await seed_event(
            console.store, watch_id=watch["id"], sequence=1, destinations={"ops-hook": "dead"}
        )
        await set_delivery(console.store, ids["ops-hook"], last_error=ATTRIBUTE + SCRIPT)
        await seed_attempt(
            console.store, delivery_id=ids["ops-hook"], status_code=502, error=SCRIPT + ATTRIBUTE
        )
        pages = {
            path: (await console.page(path)).text
            for path in (
                "/console/",
                "/console/imports",
                f"/console/imports/{import_id}",
                f"/console/watches/{watch['id']}",
                "/console/deliveries?status=dead",
            )
        }
    for hostile in HOSTILE:
        assert_shown_escaped(pages[f"/console/imports/{import_id}"], hostile)
        assert_shown_escaped(pages[f"/console/watches/{watch['id']}"], hostile)
        assert_shown_escaped(pages["/console/deliveries?status=dead"], hostile)
    assert_shown_escaped(pages["/console/"], SCRIPT)  # the running import's name
    assert_shown_escaped(pages["/console/imports"], SCRIPT)
    for path, page in pages.items():
        assert "<script>alert" not in page, path
        assert "<img src=x" not in page, path
