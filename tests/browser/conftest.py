"""Fixtures for the console's browser tests: one running scene and one Chromium per module, and a
signed-in page per test that records every request, console message and dialog it sees.

Playwright is imported inside the fixtures, so this file loads where Playwright is missing and the
test module can skip itself saying why.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.browser.scene import OPS_TOKEN, Scene, realistic

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDE = {"width": 1280, "height": 900}


@dataclass
class Seen:
    """What a page did: every request's URL, console messages (type, text) and dialogs."""

    requests: list[str] = field(default_factory=list)
    console: list[tuple[str, str]] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@dataclass
class Console:
    """A page of a browser context, the scene's ids and what the page has seen."""

    page: Any
    url: str
    ids: dict[str, str]
    seen: Seen

    def open(self, path: str) -> Any:
        """Go to a console path; returns the response of the page's own document."""
        return self.page.goto(self.url + path)

    def count_swaps(self) -> None:
        """Count the live refreshes from now on in window.__swaps (set from outside the page, so
        the page's CSP has no say)."""
        self.page.evaluate(
            "window.__swaps = 0;"
            "document.body.addEventListener('htmx:afterSettle', () => { window.__swaps += 1; });"
        )

    def wait_for_swap(self, *, within_s: float = 8) -> None:
        """Wait until the live block has been refreshed at least once since count_swaps()."""
        self.wait_for("window.__swaps >= 1", within_s=within_s)

    def wait_for(self, expression: str, *, within_s: float = 8) -> None:
        """Wait until the JS expression is true. Not page.wait_for_function: that evaluates
        strings with eval inside the page, which the console's CSP forbids."""
        deadline = time.monotonic() + within_s
        while not self.page.evaluate(expression):
            assert time.monotonic() < deadline, f"timed out waiting for {expression}"
            self.page.wait_for_timeout(100)  # a poll interval under the deadline above


def watch(page: Any) -> Seen:
    """Record the page's requests, console messages and dialogs (dismissing the dialogs)."""
    seen = Seen()
    page.on("request", lambda request: seen.requests.append(request.url))
    page.on("console", lambda message: seen.console.append((message.type, message.text)))

    def on_dialog(dialog: Any) -> None:
        seen.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return seen


@pytest.fixture(scope="module")
def scene() -> Iterator[Scene]:
    running = Scene().start()
    try:
        running.ids.update(realistic(running))
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def signed_in(browser: Any, scene: Scene) -> dict[str, Any]:
    """The storage state (the session cookie) of an operator signed in through the form."""
    context = browser.new_context(base_url=scene.url)
    try:
        page = context.new_page()
        page.goto("/console/login")
        page.fill("#token", OPS_TOKEN)
        page.click("button[type=submit]")
        page.wait_for_url(f"{scene.url}/console/")
        return dict(context.storage_state())
    finally:
        context.close()


def _console(browser: Any, scene: Scene, state: dict[str, Any] | None) -> Iterator[Console]:
    context = browser.new_context(base_url=scene.url, viewport=WIDE, storage_state=state)
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        yield Console(page=page, url=scene.url, ids=scene.ids, seen=watch(page))
    finally:
        context.close()


@pytest.fixture
def console(browser: Any, scene: Scene, signed_in: dict[str, Any]) -> Iterator[Console]:
    """A fresh page, signed in as the operator."""
    yield from _console(browser, scene, signed_in)


@pytest.fixture
def stranger(browser: Any, scene: Scene) -> Iterator[Console]:
    """A fresh page of someone not signed in."""
    yield from _console(browser, scene, None)
