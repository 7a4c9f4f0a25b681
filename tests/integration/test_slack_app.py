"""The Slack app over real HTTP: a bridge on 127.0.0.1 with slack_app configured, requests signed
the way Slack signs them, ephemeral answers in the ack or posted to the response_url (the Slack
stand-in records those), and what they stored."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from bridge.config import Config, SlackAppConfig
from bridge.devtools.localserver import serving
from bridge.events.subscriptions import job_target
from bridge.slackapp.answers import Asker, answer
from bridge.slackapp.buttons import mute_text
from bridge.slackapp.commands import Subscribe, Unsubscribe
from bridge.slackapp.context import SlackAppContext
from tests.integration.api_support import Api, running_api
from tests.integration.console_support import running_console
from tests.integration.import_support import ImportDriver, snapshot
from tests.plugins.slack_requests import (
    CHANNEL_ID,
    SIGNING_SECRET,
    TEAM_ID,
    button_body,
    command_body,
    sign,
)
from tests.plugins.slack_standin import SlackStandin

ACK_LIMIT_S = 3.0  # Slack shows the user an error past this
OTHER_CHANNEL = "C0OTHER01"
OTHER_TEAM = "T0STRANGER"
JOB = "0f8b7c4e-2d1a-4c3b-9e8f-1a2b3c4d5e6f"


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandin]:
    standin = SlackStandin()
    async with serving(standin.app) as server:
        standin.url = server.url
        yield standin


def with_slack_app(slack: SlackStandin, *teams: str) -> Callable[[Config], Config]:
    def edit(config: Config) -> Config:
        app = SlackAppConfig(
            signing_secret=SecretStr(SIGNING_SECRET),
            token=SecretStr(slack.token),
            base_url=slack.api_url,
            allowed_teams=list(teams),
        )
        return config.model_copy(update={"slack_app": app})

    return edit


@dataclass
class SlackUser:
    """Someone typing /photos and clicking buttons, through the bridge's two request URLs."""

    api: Api
    slack: SlackStandin

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        started = time.monotonic()
        answer = await self.api.http.post(path, content=body, headers=headers)
        assert time.monotonic() - started < ACK_LIMIT_S
        return answer

    async def command(self, text: str, **fields: Any) -> httpx.Response:
        body = command_body(text, response_url=self.slack.webhook_url, **fields)
        return await self.post("/slack/commands", body, sign(body))

    async def says(self, text: str, **fields: Any) -> str:
        """The ephemeral answer in the command's ack."""
        answer = await self.command(text, **fields)
        assert answer.status_code == 200
        assert answer.json()["response_type"] == "ephemeral"
        return str(answer.json()["text"])

    async def click(self, action_id: str, value: str, **fields: Any) -> str:
        """Click a button; the answer that follows the ack through the response_url."""
        seen = len(self.slack.webhook_messages)
        body = button_body(action_id, value, response_url=self.slack.webhook_url, **fields)
        answer = await self.post("/slack/interactions", body, sign(body))
        assert answer.status_code == 200
        return await self.followed(seen)

    async def followed(self, seen: int) -> str:
        """The next message posted to the response_url, within the ack limit."""
        async with asyncio.timeout(ACK_LIMIT_S):
            while len(self.slack.webhook_messages) <= seen:
                await asyncio.sleep(0.01)
        message = self.slack.webhook_messages[seen]
        assert message["response_type"] == "ephemeral"
        assert message.get("replace_original") in (None, False)
        return str(message["text"])


@pytest.fixture
async def user(slack: SlackStandin, tmp_path) -> AsyncIterator[SlackUser]:
    url = f"sqlite:///{tmp_path}/bridge.db"
    async with running_api(url, edit_config=with_slack_app(slack)) as api:
        yield SlackUser(api, slack)


async def subscriptions(api: Api, channel: str = CHANNEL_ID) -> list[Any]:
    return await api.store.subscriptions.of_channel(channel)


# ----- signatures ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(
            lambda body: {"Content-Type": "application/x-www-form-urlencoded"}, id="unsigned"
        ),
        pytest.param(lambda body: sign(body, secret="not-the-signing-secret"), id="wrong-secret"),
        pytest.param(lambda body: sign(body, timestamp=int(time.time()) - 301), id="stale"),
        pytest.param(lambda body: sign(body, timestamp=int(time.time()) + 301), id="future"),
        pytest.param(lambda body: sign(body + b"&x=1") | {}, id="other-body"),
        pytest.param(
            lambda body: {**sign(body), "X-Slack-Signature": "v1=" + "0" * 64}, id="bad-version"
        ),
    ],
)
@pytest.mark.parametrize("path", ["/slack/commands", "/slack/interactions"])
async def test_slack_app_refuses_badly_signed_requests(storage_url, slack, headers, path):
    async with running_api(storage_url, edit_config=with_slack_app(slack)) as api:
        if path == "/slack/commands":
            body = command_body("subscribe account main", response_url=slack.webhook_url)
        else:
            body = button_body("mute", f"job:wat_{'a' * 32}", response_url=slack.webhook_url)
        answer = await api.http.post(path, content=body, headers=headers(body))
        assert answer.status_code == 401
        assert await subscriptions(api) == []
        assert (await api.store.subscriptions.current()).mutes == frozenset()
    assert slack.webhook_messages == []
    assert slack.calls == []


async def test_slack_app_ssl_check_needs_a_signature_too(user):
    body = b"ssl_check=1&token=deprecated"
    unsigned = await user.api.http.post(
        "/slack/commands",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert unsigned.status_code == 401
    signed = await user.api.http.post("/slack/commands", content=body, headers=sign(body))
    assert signed.status_code == 200


async def test_slack_app_is_not_served_without_slack_app_config(tmp_path):
    async with running_api(f"sqlite:///{tmp_path}/b.db") as api:
        body = command_body("help", response_url="http://127.0.0.1:9/x")
        answer = await api.http.post("/slack/commands", content=body, headers=sign(body))
        assert answer.status_code == 404


async def test_slack_app_needs_no_bearer_token_and_keeps_the_body_limit(user):
    answer = await user.command("help")
    assert answer.status_code == 200
    assert answer.headers["X-Request-Id"]
    big = command_body("x" * 70_000, response_url=user.slack.webhook_url)
    refused = await user.api.http.post("/slack/commands", content=big, headers=sign(big))
    assert refused.status_code == 413


# ----- commands ------------------------------------------------------------------------------


async def test_slack_app_help_lists_every_command(user):
    text = await user.says("help", command="/photos")
    for usage in (
        "status",
        "subscribe account",
        "subscribe import",
        "subscribe job",
        "unsubscribe",
        "list",
    ):
        assert f"/photos {usage}" in text
    assert await user.says("") == text


async def test_slack_app_subscribe_account_stores_it_and_says_so(storage_url, slack):
    async with running_api(storage_url, edit_config=with_slack_app(slack)) as api:
        user = SlackUser(api, slack)
        text = await user.says("subscribe account main job.* item.failed")
        [sub] = await subscriptions(api)
        assert (sub.team_id, sub.channel_id, sub.kind, sub.target) == (
            TEAM_ID,
            CHANNEL_ID,
            "account",
            "main",
        )
        assert sub.events == ("job.*", "item.failed")
        assert sub.created_by == "U0PERSON1"
        assert sub.id in text and "account *main*" in text
        again = await user.says("subscribe account main")
        assert "already subscribed" in again and sub.id in again
        assert len(await subscriptions(api)) == 1


async def test_slack_app_subscribe_account_refuses_an_unknown_account(user):
    text = await user.says("subscribe account mian")
    assert text == "No account named *mian*. Accounts: main, second."
    assert "aigen_test" not in text
    assert await subscriptions(user.api) == []


async def test_slack_app_subscribe_account_refuses_an_unknown_pattern(user):
    text = await user.says("subscribe account main job.done")
    assert "unknown event pattern 'job.done'" in text
    assert await subscriptions(user.api) == []


async def test_slack_app_subscribe_import_needs_an_existing_import(storage_url, slack):
    async with running_api(storage_url, edit_config=with_slack_app(slack)) as api:
        user = SlackUser(api, slack)
        missing = "imp_" + "0" * 32
        assert await user.says(f"subscribe import {missing}") == f"No import `{missing}`."
        import_id = await ImportDriver(api.store).create()
        text = await user.says(f"subscribe import {import_id}")
        [sub] = await subscriptions(api)
        assert (sub.kind, sub.target, sub.account) == ("import", import_id, "main")
        assert sub.id in text


async def test_slack_app_subscribe_job_needs_a_uuid(user):
    assert "is not a job id: a job id is a UUID" in await user.says("subscribe job 1234")
    text = await user.says(f"subscribe job {JOB.upper()}")
    [sub] = await subscriptions(user.api)
    assert (sub.kind, sub.target, sub.account) == ("job", JOB, None)
    assert sub.id in text


async def test_slack_app_subscribe_job_knows_its_account_when_watched(user):
    await ImportDriver(user.api.store).watch(JOB)
    await user.says(f"subscribe job {JOB}")
    [sub] = await subscriptions(user.api)
    assert sub.account == "main"


async def test_slack_app_unsubscribe_only_this_channels(user):
    await user.says("subscribe account main")
    [sub] = await subscriptions(user.api)
    elsewhere = await user.says(f"unsubscribe {sub.id}", channel_id=OTHER_CHANNEL)
    assert f"This channel has no subscription `{sub.id}`" in elsewhere
    assert await subscriptions(user.api) == [sub]
    assert "is not a subscription id" in await user.says("unsubscribe 12")
    assert await user.says(f"unsubscribe {sub.id}") == f"Unsubscribed: `{sub.id}` is gone."
    assert await subscriptions(user.api) == []


async def test_slack_app_list_answers_through_the_response_url(user):
    await user.says("subscribe account main")
    await user.says("subscribe account second import.*", channel_id=OTHER_CHANNEL)
    await user.says(f"subscribe job {JOB}")
    seen = len(user.slack.webhook_messages)
    answer = await user.command("list")
    assert answer.status_code == 200 and answer.content == b""
    text = await user.followed(seen)
    ids = [s.id for s in await subscriptions(user.api)]
    assert text.splitlines()[0] == "This channel's subscriptions (2):"
    assert all(i in text for i in ids)
    assert "second" not in text
    seen = len(user.slack.webhook_messages)
    await user.command("list", channel_id="C0EMPTY01")
    assert "This channel has no subscriptions" in await user.followed(seen)


async def test_slack_app_explains_mistakes(user):
    assert "Unknown command `subscirbe`" in await user.says("subscirbe account main")
    assert "Usage: `status" in await user.says("status")
    assert "is not a job uuid" in await user.says("status 42")
    assert await subscriptions(user.api) == []


async def test_slack_app_status_of_a_watch_an_import_and_a_job(storage_url, slack):
    async with running_api(storage_url, edit_config=with_slack_app(slack)) as api:
        user = SlackUser(api, slack)
        driver = ImportDriver(api.store)
        watch_id = await driver.watch(JOB)
        await driver.poll(snapshot(JOB, "processing", ["completed", "failed", "processing"]))
        text = await user.says(f"status {watch_id}")
        assert f"Watch `{watch_id}` (client shop, account main, watch active)" in text
        assert "*processing* — 1 of 3 images done, 1 failed" in text
        text = await user.says(f"status {JOB}")
        assert text.startswith(f"Job `{JOB}` on account *main*")
        assert f"watch `{watch_id}`" in text
        import_id = await driver.create()
        text = await user.says(f"status {import_id}")
        assert f"Import `{import_id}` *catalog* (account main)" in text
        assert "https://" not in text and "hooks.example.com" not in text
        assert "No watch of job" in await user.says(f"status {uuid.uuid4()}")
        assert "No import" in await user.says("status imp_" + "1" * 32)


# ----- teams ---------------------------------------------------------------------------------


async def test_slack_app_refuses_other_teams(slack, tmp_path):
    edit = with_slack_app(slack, TEAM_ID)
    async with running_api(f"sqlite:///{tmp_path}/b.db", edit_config=edit) as api:
        user = SlackUser(api, slack)
        driver = ImportDriver(api.store)
        import_id = await driver.create()
        for text in ("subscribe account main", "list", "help"):
            refused = await user.says(text, team_id=OTHER_TEAM)
            assert "may not use this photo-bridge" in refused and OTHER_TEAM in refused
        assert await subscriptions(api) == []
        clicked = await user.click("mute", f"import:{import_id}", team_id=OTHER_TEAM)
        assert "may not use this photo-bridge" in clicked
        assert (await api.store.subscriptions.current()).mutes == frozenset()
        assert "Subscribed" in await user.says("subscribe account main")


# ----- buttons -------------------------------------------------------------------------------


async def test_slack_app_show_failures_of_an_import_and_of_a_job(user):
    driver = ImportDriver(user.api.store)
    import_id = await driver.create()
    job_ids = [str(uuid.uuid4()) for _ in range(2)]
    await driver.add(import_id, job_ids)
    await driver.poll(snapshot(job_ids[0], "partially_completed", ["completed", "failed"]))
    await driver.poll(snapshot(job_ids[1], "failed", ["failed"] * 25))
    text = await user.click("show_failures", f"import:{import_id}")
    lines = text.splitlines()
    assert lines[0] == "Failed images of import *catalog*:"
    assert len(lines) == 1 + 20 + 1 and lines[-1].startswith("…and more")
    [watch] = [
        w
        for w in (await user.api.store.imports.jobs(import_id=import_id, limit=5, cursor=None))[0]
        if w.job_id == job_ids[0]
    ]
    text = await user.click("show_failures", f"job:{watch.id}")
    assert text.splitlines() == [f"Failed images of job `{job_ids[0]}`:", "• sku-1: failed"]
    assert "No watch" in await user.click("show_failures", "job:wat_" + "0" * 32)
    assert "names nothing" in await user.click("show_failures", "job:42")


async def test_slack_app_mute_stores_a_mute_for_the_channel(storage_url, slack):
    async with running_api(storage_url, edit_config=with_slack_app(slack)) as api:
        user = SlackUser(api, slack)
        driver = ImportDriver(api.store)
        import_id = await driver.create()
        watch_id = await driver.watch(JOB)
        assert "Muted" in await user.click("mute", f"import:{import_id}")
        assert "Muted" in await user.click("mute", f"job:{watch_id}")
        assert "already muted" in await user.click("mute", f"job:{watch_id}")
        found = await api.store.subscriptions.current()
        assert found.muted(CHANNEL_ID, account="main", job_id=JOB, import_id=None)
        assert found.muted(CHANNEL_ID, account="main", job_id=None, import_id=import_id)
        assert {(m.kind, m.target) for m in found.mutes} == {
            ("import", import_id),
            ("job", job_target("main", JOB)),
        }
        assert not found.muted(OTHER_CHANNEL, account="main", job_id=JOB, import_id=import_id)


# ----- operators -----------------------------------------------------------------------------


async def test_ops_subscriptions_pages_every_channels_subscriptions(user):
    for n, account in enumerate(["main", "second", "main"]):
        await user.says(f"subscribe account {account}", channel_id=f"C0CHAN{n:03d}")
    api = user.api
    first = await api.http.get("/v1/ops/subscriptions?limit=2", headers=api.auth("ops"))
    assert first.status_code == 200
    page = first.json()
    assert [s["channel_id"] for s in page["subscriptions"]] == ["C0CHAN000", "C0CHAN001"]
    assert set(page["subscriptions"][0]) == {
        "id",
        "team_id",
        "channel_id",
        "kind",
        "target",
        "account",
        "events",
        "created_by",
        "created_at",
    }
    assert page["subscriptions"][0]["events"] == ["*"]
    rest = await api.http.get(
        f"/v1/ops/subscriptions?limit=2&cursor={page['next_cursor']}", headers=api.auth("ops")
    )
    assert [s["channel_id"] for s in rest.json()["subscriptions"]] == ["C0CHAN002"]
    assert rest.json()["next_cursor"] is None
    assert (
        await api.http.get("/v1/ops/subscriptions", headers=api.auth("shop"))
    ).status_code == 401
    bad = await api.http.get("/v1/ops/subscriptions?cursor=x", headers=api.auth("ops"))
    assert bad.status_code == 400
    schema = (await api.http.get("/openapi.json")).json()
    assert "/v1/ops/subscriptions" in schema["paths"]


async def test_slack_app_changes_refresh_routing_at_once(user):
    refreshed: list[int] = []

    async def refresh() -> None:
        refreshed.append(len((await user.api.store.subscriptions.current()).subscriptions))

    ctx = SlackAppContext(
        store=user.api.store,
        accounts={"main": None},  # type: ignore[dict-item]
        now=user.api.clock,
        refresh=refresh,
        allowed_teams=frozenset(),
    )
    asker = Asker(team_id=TEAM_ID, channel_id=CHANNEL_ID, user_id="U0PERSON1")
    await answer(ctx, Subscribe("account", "main"), asker)
    assert refreshed == [1]  # after the write: the router's book sees it
    await answer(ctx, Subscribe("account", "main"), asker)
    assert refreshed == [1]  # nothing changed, nothing to re-read
    [sub] = await subscriptions(user.api)
    await answer(ctx, Unsubscribe(sub.id), asker)
    assert refreshed == [1, 0]
    import_id = await ImportDriver(user.api.store).create()
    await mute_text(ctx, "import", import_id, channel_id=CHANNEL_ID, user_id=None)
    assert len(refreshed) == 3


async def test_console_channels_page_lists_slack_subscriptions_escaped(slack, tmp_path):
    url = f"sqlite:///{tmp_path}/b.db"
    async with running_console(url, edit_config=with_slack_app(slack)) as console:
        page = await console.page("/console/channels")
        assert "Slack subscriptions" in page.text
        assert "No Slack channel has subscribed" in page.text
        await console.api.store.subscriptions.subscribe(
            team_id=TEAM_ID,
            channel_id=CHANNEL_ID,
            kind="account",
            target="main",
            account=None,
            events=["job.*"],
            created_by="<script>alert(1)</script>",
            now=console.api.clock(),
        )
        [sub] = await subscriptions(console.api)
        page = await console.page("/console/channels")
        assert sub.id in page.text and CHANNEL_ID in page.text and "job.*" in page.text
        assert "<script>alert(1)" not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        assert slack.token not in page.text and SIGNING_SECRET not in page.text
