"""The operators' console in Debian's Chromium: signing in, pages that follow the bridge live,
redelivering a dead delivery, accessibility, one origin, escaping and the CSP (CONTRACT section 8).

The scene (tests/browser/scene.py) runs the simulator and the bridge with polling and delivery in
the background, so imports move by themselves while a page is open.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import CHROMIUM, Console
from tests.browser.scene import CLIENT_TOKEN, OPS_TOKEN, Scene, wait_until

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)
if importlib.util.find_spec("playwright") is None:
    pytest.skip("Playwright for Python is not installed", allow_module_level=True)

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

DOCS = Path(__file__).resolve().parents[2] / "docs"
HOSTILE = ("<script>window.__pwned=1</script>", '"><img src=x onerror="window.__pwned=1">')


def pages(ids: dict[str, str]) -> list[str]:
    """Every kind of signed-in page, at paths of the scene."""
    return [
        "/console/",
        "/console/imports",
        f"/console/imports/{ids['running']}",
        "/console/deliveries",
        "/console/channels",
        f"/console/watches/{ids['lookbook']}",  # last: the tour waits here for its thumbnails
    ]


def test_console_sign_in_form_leads_to_the_overview(stranger: Console) -> None:
    page = stranger.page
    stranger.open("/console/")
    assert page.url == f"{stranger.url}/console/login?next=/console/"
    page.fill("#token", CLIENT_TOKEN)
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_have_text("That is not an operator token.")

    page.fill("#token", OPS_TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url(f"{stranger.url}/console/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")
    expect(page.locator("#budgets-h + .cards h3")).to_have_text(["studio-eu", "studio-us"])
    expect(page.get_by_role("link", name="Spring catalog 2026")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


@pytest.mark.skipif(
    os.environ.get("PHOTO_BRIDGE_SCREENSHOTS") != "1",
    reason="set PHOTO_BRIDGE_SCREENSHOTS=1 to write docs/console-*.png",
)
def test_console_screenshots_of_a_realistic_scene(console: Console) -> None:
    DOCS.mkdir(exist_ok=True)
    shots = {
        "console-overview.png": "/console/",
        "console-import.png": f"/console/imports/{console.ids['running']}",
    }
    for name, path in shots.items():
        console.open(path)
        console.page.screenshot(path=str(DOCS / name), full_page=True)
        assert (DOCS / name).stat().st_size > 10_000


def test_console_import_page_shows_the_import_finish_without_a_reload(
    console: Console, scene: Scene
) -> None:
    import_id = scene.create_import("Live import", account="studio-us", jobs=[], expected_jobs=2)
    page = console.page
    console.open(f"/console/imports/{import_id}")
    badge = page.locator("#live .summary .badge").first
    expect(badge).to_have_text("open")
    page.evaluate("window.__marker = 'still here'")

    jobs = [
        scene.new_job(
            "studio-us",
            external_ids=[f"live-{j}-{n}" for n in range(3)],
            fails=lambda fates: not any(fates),
        )
        for j in range(2)
    ]
    scene.api("POST", f"/v1/imports/{import_id}/jobs", json={"job_ids": jobs})

    expect(badge).to_have_text("completed", timeout=25_000)
    assert page.evaluate("window.__marker") == "still here"
    assert page.url == f"{console.url}/console/imports/{import_id}"
    expect(page.locator("#live .summary .figure")).to_contain_text("6 of 6 images finished")
    expect(page.locator("#jobs-h + .table-wrap tbody tr")).to_have_count(2)


def test_console_job_page_shows_thumbnails_events_and_deliveries(console: Console) -> None:
    page = console.page
    thumbnails: list[tuple[str, str]] = []
    page.on(
        "response",
        lambda r: (
            thumbnails.append((r.url, r.headers.get("content-type", "")))
            if "/thumbnail" in r.url or r.url.endswith(".svg")
            else None
        ),
    )
    console.open(f"/console/imports/{console.ids['running']}")
    page.get_by_role("link", name=console.ids["busy_job"]).click()
    page.wait_for_url("**/console/watches/wat_*")
    expect(page.get_by_role("heading", level=1)).to_have_text(console.ids["busy_job"])

    items = page.locator("#items-h + .grid .item")
    expect(items).to_have_count(8)
    expect(items.locator(".badge")).to_have_text(
        [
            "completed",
            "completed",
            "failed",
            "completed",
            "completed",
            "processing",
            "queued",
            "queued",
        ]
    )
    expect(items.nth(2)).to_contain_text("product_not_detected")
    images = items.locator("img")
    for n in range(8):
        images.nth(n).scroll_into_view_if_needed()
    console.wait_for(
        "[...document.querySelectorAll('.grid img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    widths = images.evaluate_all("all => all.map(i => i.naturalWidth)")
    assert widths.count(96) == 4  # the CDN's thumbnails of the completed items
    kinds = sorted(kind for url, kind in thumbnails if url.endswith("/thumbnail"))
    assert kinds == ["image/png"] * 4 + ["image/svg+xml"] * 4  # the others: the placeholder

    expect(page.locator("#events-h + .timeline li").first).to_contain_text("#1")
    rows = page.locator("#deliveries-h + .table-wrap tbody tr")
    assert rows.count() >= 1
    expect(rows.first).to_contain_text("ops-hook")
    expect(rows.first.locator(".badge")).to_have_text("dead")
    expect(rows.first.get_by_role("button", name="Redeliver")).to_be_visible()


def test_console_redeliver_turns_a_dead_delivery_delivered_live(
    console: Console, scene: Scene
) -> None:
    page = console.page
    console.open("/console/deliveries?status=dead")
    expect(page.locator("#status")).to_have_value("dead")
    first = (
        page.locator("#live tbody tr")
        .filter(has=page.locator('a[href^="/console/watches/"]'))
        .first
    )
    expect(first.locator(".badge")).to_have_text("dead")
    button = first.get_by_role("button", name="Redeliver")
    delivery_id = str(button.get_attribute("aria-label")).removeprefix("Redeliver ")
    job_page = str(first.locator("a").first.get_attribute("href"))

    scene.receiver.mode = "hold"  # recovered, but answers only when the test says so
    try:
        button.click()
        expect(page.get_by_role("status")).to_have_text("Redelivery queued.")
        assert page.url == f"{console.url}/console/deliveries?status=dead"
        expect(page.get_by_role("button", name=f"Redeliver {delivery_id}")).to_have_count(0)

        console.open(job_page)
        row = page.locator("#deliveries-h + .table-wrap tbody tr").filter(has_text=delivery_id[-8:])
        expect(row.locator(".badge")).to_have_text("pending")
        page.evaluate("window.__marker = 'still here'")
    finally:
        scene.receiver.mode = "ok"
    expect(row.locator(".badge")).to_have_text("delivered", timeout=15_000)
    assert page.evaluate("window.__marker") == "still here"
    assert page.url == console.url + job_page
    deliveries = scene.api("GET", "/v1/ops/deliveries?status=delivered&limit=100", operator=True)
    assert delivery_id in [d["id"] for d in deliveries["deliveries"]]


def _serious(results: Any) -> list[str]:
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def _overflow(page: Any) -> bool:
    return bool(
        page.evaluate(
            "document.documentElement.scrollWidth > document.documentElement.clientWidth + 1"
        )
    )


@pytest.mark.parametrize("width", [1280, 390])
def test_console_pages_pass_axe_and_fit_the_width(
    console: Console, stranger: Console, width: int
) -> None:
    axe = Axe()
    found: dict[str, list[str]] = {}
    overflowing = []
    visits = [(console, path) for path in pages(console.ids)]
    visits.append((stranger, "/console/login"))
    for who, path in visits:
        who.page.set_viewport_size({"width": width, "height": 900})
        assert who.open(path).status == 200
        if problems := _serious(axe.run(who.page)):
            found[path] = problems
        if width == 390 and _overflow(who.page):
            overflowing.append(path)
    assert found == {}
    assert overflowing == []


def _tour(console: Console) -> list[Any]:
    """Open every page, and stay on the last until its live block refreshed once."""
    responses = [console.open(path) for path in pages(console.ids)]
    console.page.evaluate(  # let the job page's lazy thumbnails load
        "window.scrollTo(0, document.body.scrollHeight)"
    )
    console.page.wait_for_load_state("networkidle")
    console.count_swaps()
    console.wait_for_swap()
    return responses


def test_console_pages_ask_only_their_own_origin(console: Console, stranger: Console) -> None:
    stranger.open("/console/login")
    _tour(console)
    asked = console.seen.requests + stranger.seen.requests
    assert any("/console/static/htmx.min.js" in url for url in asked)
    assert any("/thumbnail" in url for url in asked)
    assert sum(url.endswith(console.page.url.removeprefix(console.url)) for url in asked) >= 2
    assert [url for url in asked if not url.startswith(console.url + "/")] == []


def test_console_pages_send_a_csp_they_do_not_break(console: Console, stranger: Console) -> None:
    responses = [stranger.open("/console/login"), *_tour(console)]
    for response in responses:
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert response.headers["x-frame-options"] == "DENY"
    messages = console.seen.console + stranger.seen.console
    assert [text for _, text in messages if "Content Security Policy" in text] == []
    assert [text for kind, text in messages if kind == "error"] == []


def test_console_escapes_hostile_strings(console: Console, scene: Scene) -> None:
    job = scene.new_job("studio-us", external_ids=list(HOSTILE), fails=lambda f: f == [True, True])
    import_id = scene.create_import(
        HOSTILE[0], account="studio-us", jobs=[job], metadata={"note": HOSTILE[1]}
    )
    other = scene.new_job("studio-us", external_ids=["plain"])
    watch_id = scene.create_watch(
        other, account="studio-us", metadata={"a": HOSTILE[0], "b": HOSTILE[1]}
    )

    def polled() -> bool:
        imported = scene.api("GET", f"/v1/imports/{import_id}")["import"]
        return bool(imported["ended_at"]) and bool(
            scene.api("GET", f"/v1/watches/{watch_id}")["watch"]["job"]
        )

    wait_until(polled, what="the hostile import to end and the watch to be polled")
    job_watch = scene.api("GET", "/v1/watches?limit=100")["watches"]
    inside = next(w["id"] for w in job_watch if w["job_id"] == job)
    page = console.page
    shown = {
        "/console/": [],
        "/console/imports": [HOSTILE[0]],
        f"/console/imports/{import_id}": [*HOSTILE],
        f"/console/watches/{inside}": [*HOSTILE],
        f"/console/watches/{watch_id}": [*HOSTILE],
        "/console/deliveries": [],
    }
    for path, texts in shown.items():
        console.open(path)
        for text in texts:
            expect(page.get_by_text(text, exact=True).first).to_be_attached()
        assert page.locator('img[src="x"]').count() == 0
        assert page.locator("script:not([src])").count() == 0
        assert page.evaluate("typeof window.__pwned") == "undefined"
    console.count_swaps()
    console.wait_for_swap()
    assert page.locator('img[src="x"]').count() == 0
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert console.seen.dialogs == []
