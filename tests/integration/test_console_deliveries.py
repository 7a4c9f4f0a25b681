"""The deliveries page and its forms over a real server, on SQLite and PostgreSQL: filters, cursor
pages, "Redeliver" and "Redeliver all" doing what the operator API's retries do, and forms without
their csrf_token (or without a session) changing nothing."""

from __future__ import annotations

import html
import re
from typing import Any

from bridge.ids import new_id
from tests.integration.api_support import seed_event
from tests.integration.console_support import (
    Console,
    browser,
    delivery_row,
    login_form,
    running_console,
    statuses,
)

KEPT = ("status", "attempts", "next_attempt_at", "lease_owner", "lease_expires_at", "last_error")
FLASH = re.compile(r'<p class="flash" role="status">(.*?)</p>')


def _shown(page: str) -> set[str]:
    """The tails of the delivery ids listed on a deliveries page."""
    return set(re.findall(r'class="mono">…([0-9a-f]{8})</', page))


def _tail(delivery_id: str) -> str:
    return delivery_id[-8:]


def _flashes(page: str) -> list[str]:
    return [html.unescape(m) for m in FLASH.findall(page)]


async def _seed(console: Console, *, start: int, destinations: dict[str, str]) -> dict[str, str]:
    """One event of a fresh watch id with a delivery per destination; returns their ids."""
    _, ids = await seed_event(
        console.store, watch_id=new_id("wat"), sequence=start, destinations=destinations
    )
    return ids


def _compare(row: dict[str, Any]) -> dict[str, Any]:
    return {key: row[key] for key in KEPT}


async def test_console_deliveries_filter_by_status_and_channel(storage_url: str) -> None:
    async with running_console(storage_url) as console:
        a = await _seed(
            console, start=1, destinations={"ops-hook": "dead", "catalog-slack": "dead"}
        )
        b = await _seed(
            console, start=1, destinations={"ops-hook": "delivered", "catalog-slack": "pending"}
        )
        everything = (await console.page("/console/deliveries")).text
        dead_hook = (await console.page("/console/deliveries?status=dead&channel=ops-hook")).text
        dead = (await console.page("/console/deliveries?status=dead")).text
        slack = (await console.page("/console/deliveries?channel=catalog-slack")).text
        unknown = (await console.page("/console/deliveries?status=lost&channel=nowhere")).text
    every_id = {_tail(i) for i in (*a.values(), *b.values())}
    assert _shown(everything) == every_id
    assert _shown(dead_hook) == {_tail(a["ops-hook"])}
    assert _shown(dead) == {_tail(a["ops-hook"]), _tail(a["catalog-slack"])}
    assert _shown(slack) == {_tail(a["catalog-slack"]), _tail(b["catalog-slack"])}
    assert _shown(unknown) == every_id  # filters that name nothing are dropped
    # "Redeliver all" is offered for one channel's dead deliveries, for that channel.
    assert 'name="channel" value="ops-hook"' in dead_hook
    assert "Redeliver all" not in dead and "Redeliver all" not in everything


async def test_console_deliveries_cursor_pages(storage_url: str) -> None:
    seeded: list[str] = []
    async with running_console(storage_url) as console:
        for sequence in range(1, 58):
            ids = await _seed(console, start=sequence, destinations={"ops-hook": "dead"})
            seeded.append(ids["ops-hook"])
        await _seed(console, start=1, destinations={"catalog-slack": "dead"})
        pages: list[set[str]] = []
        path: str | None = "/console/deliveries?status=dead&channel=ops-hook"
        while path is not None and len(pages) < 5:
            page = (await console.page(path)).text
            pages.append(_shown(page))
            older = re.search(r'<a href="([^"]+)">Older →</a>', page)
            path = html.unescape(older.group(1)) if older else None
    assert [len(p) for p in pages] == [50, 7]
    assert pages[0].isdisjoint(pages[1])
    assert pages[0] | pages[1] == {_tail(i) for i in seeded}
    # Newest first: the first page holds the 50 highest ids (ids made in one millisecond sort by
    # their random part, so the seeding order is not the id order).
    assert pages[0] == {_tail(i) for i in sorted(seeded)[-50:]}


async def test_console_redeliver_resets_a_dead_delivery_like_the_api(storage_url: str) -> None:
    async with running_console(storage_url) as console:
        by_console = (await _seed(console, start=1, destinations={"ops-hook": "dead"}))["ops-hook"]
        by_api = (await _seed(console, start=2, destinations={"ops-hook": "dead"}))["ops-hook"]
        back = "/console/deliveries?status=dead"
        posted = await console.post(f"/console/deliveries/{by_console}/redeliver", {"back": back})
        assert posted.status_code == 303
        assert posted.headers["location"] == back
        api = await console.api.http.post(
            f"/v1/ops/deliveries/{by_api}/retry", headers=console.api.auth("ops")
        )
        assert api.status_code == 202, api.text
        # A live refresh leaves the message for the page a person sees next.
        live = (await console.page(back, **{"HX-Request": "true"})).text
        shown = (await console.page(back)).text
        again = (await console.page(back)).text
        mine = await delivery_row(console.store, by_console)
        theirs = await delivery_row(console.store, by_api)
    assert mine["status"] == "pending"
    assert _compare(mine) == _compare(theirs)
    assert _flashes(live) == []
    assert _flashes(shown) == ["Redelivery queued."]
    assert _flashes(again) == []  # shown once


async def test_console_redeliver_leaves_a_delivered_one_alone(storage_url: str) -> None:
    async with running_console(storage_url) as console:
        done = (await _seed(console, start=1, destinations={"ops-hook": "delivered"}))["ops-hook"]
        before = await delivery_row(console.store, done)
        posted = await console.post(
            f"/console/deliveries/{done}/redeliver", {"back": "/console/deliveries"}
        )
        shown = (await console.page(posted.headers["location"])).text
        after = await delivery_row(console.store, done)
        missing = await console.post(
            f"/console/deliveries/{new_id('dlv')}/redeliver", {"back": "/console/deliveries"}
        )
        nothing = (await console.page(missing.headers["location"])).text
    assert posted.status_code == 303
    assert after == before
    assert _flashes(shown) == ["Not redelivered: the delivery is delivered, not dead."]
    assert _flashes(nothing) == ["No such delivery."]


async def test_console_redeliver_all_resets_one_channels_dead(storage_url: str) -> None:
    async with running_console(storage_url) as console:
        hook: list[str] = []
        others: list[str] = []
        for sequence in range(1, 4):
            ids = await _seed(
                console, start=sequence, destinations={"ops-hook": "dead", "catalog-slack": "dead"}
            )
            hook.append(ids["ops-hook"])
            others.append(ids["catalog-slack"])
        delivered = (await _seed(console, start=9, destinations={"ops-hook": "delivered"}))[
            "ops-hook"
        ]
        back = "/console/deliveries?status=dead&channel=ops-hook"
        posted = await console.post(
            "/console/deliveries/redeliver", {"channel": "ops-hook", "back": back}
        )
        shown = (await console.page(posted.headers["location"])).text
        found = await statuses(console.store, [*hook, *others, delivered])
    assert posted.status_code == 303
    assert posted.headers["location"] == back
    assert [found[i] for i in hook] == ["pending"] * 3
    assert [found[i] for i in others] == ["dead"] * 3
    assert found[delivered] == "delivered"
    assert _flashes(shown) == ["3 dead deliveries to ops-hook queued again."]
    assert _shown(shown) == set()  # none of ops-hook's is dead any more


async def test_console_redeliver_forms_need_their_csrf_token(storage_url: str) -> None:
    async with running_console(storage_url) as console:
        ids = await _seed(console, start=1, destinations={"ops-hook": "dead"})
        dead = ids["ops-hook"]
        before = await delivery_row(console.store, dead)
        answers = []
        for csrf in (None, "", "forged-" + "c" * 40):
            answers.append(
                await console.post(f"/console/deliveries/{dead}/redeliver", {}, csrf=csrf)
            )
            answers.append(
                await console.post(
                    "/console/deliveries/redeliver", {"channel": "ops-hook"}, csrf=csrf
                )
            )
        after = await delivery_row(console.store, dead)
        # The same forms with the session's token do change it: the refusals were the CSRF check.
        accepted = await console.post("/console/deliveries/redeliver", {"channel": "ops-hook"})
        redelivered = await delivery_row(console.store, dead)
    assert [a.status_code for a in answers] == [403] * 6
    assert after == before
    assert accepted.status_code == 303
    assert redelivered["status"] == "pending"


async def test_console_redeliver_signed_out_changes_nothing(storage_url: str) -> None:
    async with running_console(storage_url) as console:
        dead = (await _seed(console, start=1, destinations={"ops-hook": "dead"}))["ops-hook"]
        before = await delivery_row(console.store, dead)
        async with browser(console.api) as http:
            # A session from the sign-in form holds a csrf_token, but no operator.
            csrf = await login_form(http)
            one = await http.post(
                f"/console/deliveries/{dead}/redeliver", data={"csrf_token": csrf}
            )
            every = await http.post(
                "/console/deliveries/redeliver", data={"csrf_token": csrf, "channel": "ops-hook"}
            )
        after = await delivery_row(console.store, dead)
    for answer in (one, every):
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/console/login")
    assert after == before
