"""The Slack app against malformed and hostile requests: a 401 before anything is parsed, ids of
Slack's own shape only, and a bounded number of subscriptions per channel."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import pytest

from bridge.slackapp.answers import MAX_PER_CHANNEL
from tests.integration.api_support import running_api
from tests.integration.test_slack_app import SlackUser, slack, subscriptions, with_slack_app
from tests.plugins.slack_requests import CHANNEL_ID, command_body, sign
from tests.plugins.slack_standin import SlackStandin

__all__ = ["slack"]  # the fixture, shared with test_slack_app


@pytest.fixture
async def user(slack: SlackStandin, tmp_path) -> AsyncIterator[SlackUser]:
    url = f"sqlite:///{tmp_path}/bridge.db"
    async with running_api(url, edit_config=with_slack_app(slack)) as api:
        yield SlackUser(api, slack)


@pytest.mark.parametrize(
    ("path", "body", "content_type"),
    [
        ("/slack/interactions", b"payload=notjson", "application/x-www-form-urlencoded"),
        ("/slack/commands", b"\xff\xfe\xfa not utf-8", "application/x-www-form-urlencoded"),
        ("/slack/interactions", b"{broken", "application/json"),
    ],
    ids=["bad-payload", "not-utf8", "bad-json"],
)
async def test_slack_app_malformed_unsigned_body_is_401(
    user: SlackUser, path: str, body: bytes, content_type: str
) -> None:
    answer = await user.api.http.post(path, content=body, headers={"Content-Type": content_type})
    assert answer.status_code == 401
    assert await subscriptions(user.api) == []


async def test_slack_app_unreadable_timestamp_is_401(user: SlackUser) -> None:
    body = command_body("subscribe account main", response_url=user.slack.webhook_url)
    headers = {**sign(body), "X-Slack-Request-Timestamp": "abc"}
    answer = await user.api.http.post("/slack/commands", content=body, headers=headers)
    assert answer.status_code == 401
    assert await subscriptions(user.api) == []


@pytest.mark.parametrize("channel", ["", "<script>x</script>", "c0123456", "C01\n23"])
async def test_slack_app_refuses_a_channel_id_not_of_slacks_shape(
    user: SlackUser, channel: str
) -> None:
    text = await user.says("subscribe account main", channel_id=channel)
    assert "which channel" in text
    assert await subscriptions(user.api, channel) == []
    assert await user.api.store.subscriptions.page(limit=10, cursor=None) == ([], None)


async def test_slack_app_caps_subscriptions_per_channel(user: SlackUser) -> None:
    started = time.monotonic()
    for _ in range(MAX_PER_CHANNEL):
        text = await user.says(f"subscribe job {uuid.uuid4()}")
        assert text.startswith("Subscribed")
    assert time.monotonic() - started < 60
    refused = await user.says(f"subscribe job {uuid.uuid4()}")
    assert f"has {MAX_PER_CHANNEL} subscriptions" in refused
    assert len(await subscriptions(user.api, CHANNEL_ID)) == MAX_PER_CHANNEL
