"""Channels subscribed through the Slack app, as operators see them: listed with the configured
channels by /v1/ops/channels and the console, filterable and redeliverable like any channel."""

from __future__ import annotations

import html

from bridge.ids import new_id
from bridge.store import Store
from tests.integration.api_support import NOW, running_api, seed_event
from tests.integration.console_support import Console, running_console, statuses

APP = "slack-app:C0999999"  # no configured channel posts to C0999999
GONE = "slack-app:C0GONE00"  # unsubscribed since; its dead delivery is still stored


async def _subscribe(store: Store, channel_id: str) -> None:
    await store.subscriptions.subscribe(
        team_id="T0OPS",
        channel_id=channel_id,
        kind="account",
        target="main",
        account=None,
        events=["*"],
        created_by="U0OPS",
        now=NOW,
    )


async def _seed(store: Store) -> dict[str, str]:
    """C0999999 and catalog-slack's own C0123456 subscribed; dead deliveries to the app's
    channels; returns {destination: delivery id}."""
    await _subscribe(store, "C0999999")
    await _subscribe(store, "C0123456")  # heard through catalog-slack: no second channel
    _, ids = await seed_event(
        store,
        watch_id=new_id("wat"),
        sequence=1,
        destinations={APP: "dead", GONE: "dead", "catalog-slack": "delivered"},
    )
    return ids


async def test_ops_channels_list_the_slack_apps_subscribed_channels(storage_url: str) -> None:
    async with running_api(storage_url) as api:
        ids = await _seed(api.store)
        channels = (await api.http.get("/v1/ops/channels", headers=api.auth("ops"))).json()
        listed = await api.http.get(
            "/v1/ops/deliveries", params={"channel": APP}, headers=api.auth("ops")
        )
    by_name = {c["name"]: c for c in channels["channels"]}
    assert list(by_name) == ["ops-hook", "catalog-slack", APP]
    assert by_name[APP]["type"] == "slack" and by_name[APP]["dead"] == 1
    assert [d["id"] for d in listed.json()["deliveries"]] == [ids[APP]]


async def test_ops_retry_dead_takes_the_slack_apps_channels(storage_url: str) -> None:
    async with running_api(storage_url) as api:
        await _seed(api.store)
        answers = [
            await api.http.post(
                "/v1/ops/deliveries/retry", json={"channel": name}, headers=api.auth("ops")
            )
            for name in (APP, GONE, "slack-app:")
        ]
    assert [a.status_code for a in answers] == [202, 202, 400]
    assert [a.json().get("retried") for a in answers[:2]] == [1, 1]
    assert answers[2].json()["error"]["message"].startswith("channel: ")


def _options(page: str) -> list[str]:
    return [html.unescape(v) for v in _values(page)]


def _values(page: str) -> list[str]:
    start = page.index('<select id="channel"')
    block = page[start : page.index("</select>", start)]
    return [part.split('"', 1)[0] for part in block.split('<option value="')[1:]]


async def test_console_lists_and_filters_the_slack_apps_channels(storage_url: str) -> None:
    async with running_console(storage_url) as console:
        ids = await _seed(console.store)
        everything = (await console.page("/console/deliveries")).text
        app = (await console.page(f"/console/deliveries?channel={APP}")).text
        gone = (await console.page(f"/console/deliveries?channel={GONE}&status=dead")).text
        channels = (await console.page("/console/channels")).text
        redone = await _redeliver_all(console, GONE)
        after = await statuses(console.store, [ids[GONE], ids[APP]])
    assert [o for o in _options(everything) if o] == [
        "catalog-slack",
        "ops-hook",
        APP,
        "webhook_url",
    ]
    assert ids[APP][-8:] in app and ids[GONE][-8:] not in app
    assert ids[GONE][-8:] in gone and f'name="channel" value="{GONE}"' in gone
    assert APP in channels and "slack (Slack app)" in channels
    assert redone.status_code == 303
    assert after == {ids[GONE]: "pending", ids[APP]: "dead"}


async def _redeliver_all(console: Console, channel: str):
    return await console.post(
        "/console/deliveries/redeliver", {"channel": channel, "back": "/console/deliveries"}
    )
