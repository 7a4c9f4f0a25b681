"""The channel registry and the Slack app: `slack-app:<channel id>` destinations post with the app's
token, and the app's buttons appear only on messages its own bot posts."""

from __future__ import annotations

import httpx
import pytest

from bridge.config import Config
from bridge.delivery.channels.registry import ChannelRegistry, DestinationError
from bridge.delivery.channels.slack import SlackChannel
from bridge.devtools.localserver import serving
from bridge.rendering import Renderer
from tests.plugins.job_story import MemoryState, job_story
from tests.plugins.slack_standin import SlackStandin

APP_TOKEN = "xoxb-standin-token"  # the stand-in's own
OTHER_TOKEN = "xoxb-another-app"


@pytest.fixture
async def slack():
    standin = SlackStandin(channels=("C0123456", "C0999999"))
    async with serving(standin.app) as server:
        standin.url = server.url
        yield standin


@pytest.fixture
async def http():
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


def registry(slack, http, *, channel_token=APP_TOKEN, app=True):
    config = Config.model_validate(
        {
            "upstream": {"accounts": {"main": {"api_key": "aigen_test_x"}}},
            "channels": {
                "catalog-slack": {
                    "type": "slack",
                    "token": channel_token,
                    "channel": "C0123456",
                    "base_url": slack.api_url,
                }
            },
            **(
                {
                    "slack_app": {
                        "signing_secret": "standin-secret",
                        "token": APP_TOKEN,
                        "base_url": slack.api_url,
                    }
                }
                if app
                else {}
            ),
        }
    )
    return ChannelRegistry(config=config, http=http, state=MemoryState(), renderer=Renderer())


def actions(slack):
    [message] = slack.top_level()
    return [b for b in message.blocks if b["type"] == "actions"]


async def test_slack_app_destination_posts_with_the_apps_token_and_buttons(slack, http):
    channels = registry(slack, http)
    channel = channels.for_destination("slack-app:C0999999", webhook_url=None, client="shop")

    await channel.send(job_story(items=2, watch_id="wat_told")[0])

    assert isinstance(channel, SlackChannel)
    assert channels.kind("slack-app:C0999999") == "slack"
    [call] = slack.answered("chat.postMessage")
    assert call.token == APP_TOKEN and call.body["channel"] == "C0999999"
    [block] = actions(slack)
    assert [(e["action_id"], e["value"]) for e in block["elements"]] == [
        ("show_failures", "job:wat_told"),
        ("mute", "job:wat_told"),
    ]
    assert block["elements"][1]["confirm"]["confirm"]["text"] == "Mute"


@pytest.mark.parametrize(
    ("channel_token", "app", "shown"),
    [
        (APP_TOKEN, True, True),  # posted by the app's own bot: its buttons reach the app
        (OTHER_TOKEN, True, False),  # another app's bot: clicks would go to that app
        (APP_TOKEN, False, False),  # no Slack app configured
    ],
)
async def test_slack_app_buttons_only_on_messages_the_apps_bot_posts(
    slack, http, channel_token, app, shown
):
    slack.token = channel_token
    channel = registry(slack, http, channel_token=channel_token, app=app).for_destination(
        "catalog-slack", webhook_url=None, client="shop"
    )

    await channel.send(job_story(items=2)[0])

    assert bool(actions(slack)) is shown


async def test_slack_app_destination_without_slack_app_is_a_destination_error(slack, http):
    channels = registry(slack, http, app=False)

    with pytest.raises(DestinationError, match="slack_app is not configured"):
        channels.for_destination("slack-app:C0999999", webhook_url=None, client="shop")
    with pytest.raises(DestinationError, match="names no Slack channel"):
        registry(slack, http).for_destination("slack-app:", webhook_url=None, client="shop")
    assert channels.kind("slack-app:C0999999") == "slack"
