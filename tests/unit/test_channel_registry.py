import httpx
import pytest

import bridge.delivery.channels.registry as registry_module
from bridge.config import Config
from bridge.delivery import signing
from bridge.delivery.channels.email import EmailChannel
from bridge.delivery.channels.registry import ChannelRegistry, DestinationError
from bridge.delivery.channels.slack import SlackChannel
from bridge.delivery.channels.slack_webhook import SlackWebhookChannel
from bridge.delivery.channels.webhook import WebhookChannel

SECRET = signing.new_secret()
RENDERER = object()  # the channels only hold it until they send
CHANNELS = {
    "catalog-slack": {"type": "slack", "token": "xoxb-test", "channel": "C0123456"},
    "alerts": {"type": "slack_webhook", "url": "https://hooks.slack.com/services/T/B/X"},
    "ops-email": {
        "type": "email",
        "host": "127.0.0.1",
        "from": "bridge@example.com",
        "to": ["ops@example.com"],
    },
    "erp": {"type": "webhook", "url": "https://erp.example.com/hooks", "secret": SECRET},
}


class State:
    async def get_state(self, key):
        return None

    async def put_state(self, key, value):
        return None

    async def claim_state(self, key, value):
        return None


def make_config(**clients):
    return Config.model_validate(
        {
            "upstream": {"accounts": {"main": {"api_key": "aigen_test_x"}}},
            "clients": clients
            or {"shop": {"token": "shop-token", "accounts": ["main"], "webhook_secrets": [SECRET]}},
            "channels": CHANNELS,
        }
    )


@pytest.fixture
async def http():
    async with httpx.AsyncClient() as client:
        yield client


def registry(http, *, renderer=RENDERER, **clients):
    return ChannelRegistry(
        config=make_config(**clients), http=http, state=State(), renderer=renderer
    )


@pytest.mark.parametrize(
    ("destination", "cls", "kind"),
    [
        ("catalog-slack", SlackChannel, "slack"),
        ("alerts", SlackWebhookChannel, "slack_webhook"),
        ("ops-email", EmailChannel, "email"),
        ("erp", WebhookChannel, "webhook"),
    ],
)
async def test_registry_builds_each_named_channel_once(http, destination, cls, kind):
    channels = registry(http)
    first = channels.for_destination(destination, webhook_url=None, client="shop")
    assert isinstance(first, cls)
    assert channels.for_destination(destination, webhook_url=None, client="shop") is first
    assert channels.kind(destination) == kind


async def test_registry_builds_a_watch_webhook_signed_for_its_client(http):
    channels = registry(http)
    channel = channels.for_destination(
        "webhook_url", webhook_url="https://shop.example.com/hook", client="shop"
    )
    assert isinstance(channel, WebhookChannel)
    assert channels.kind("webhook_url") == "webhook"


@pytest.mark.parametrize(
    ("destination", "webhook_url", "client", "clients", "renderer", "message"),
    [
        ("gone", None, "shop", {}, RENDERER, "channel 'gone' is no longer configured"),
        ("webhook_url", None, "shop", {}, RENDERER, "the watch has no webhook_url"),
        ("webhook_url", "https://x.example", "old", {}, RENDERER, "client 'old' is no longer"),
        (
            "webhook_url",
            "https://x.example",
            "bare",
            {"bare": {"token": "bare-token", "accounts": ["main"]}},
            RENDERER,
            "client 'bare' has no webhook_secrets",
        ),
        ("catalog-slack", None, "shop", {}, None, "needs templates"),
    ],
)
async def test_registry_refuses_a_destination_it_cannot_build(
    http, destination, webhook_url, client, clients, renderer, message
):
    channels = registry(http, renderer=renderer, **clients)
    with pytest.raises(DestinationError, match=message):
        channels.for_destination(destination, webhook_url=webhook_url, client=client)
    assert channels.kind("gone") == "unknown"


async def test_a_watch_webhook_channel_is_kept_per_url_and_client_secrets_up_to_a_bound(
    http, monkeypatch
):
    other = signing.new_secret()
    reg = registry(
        http,
        shop={"token": "shop-token", "accounts": ["main"], "webhook_secrets": [SECRET]},
        mall={"token": "mall-token", "accounts": ["main"], "webhook_secrets": [other]},
    )

    def hook(url, client):
        return reg.for_destination("webhook_url", webhook_url=url, client=client)

    first = hook("https://a.example/in", "shop")
    assert hook("https://a.example/in", "shop") is first  # built once, not per send
    assert hook("https://b.example/in", "shop") is not first
    assert hook("https://a.example/in", "mall") is not first  # another client's secrets

    monkeypatch.setattr(registry_module, "WATCH_HOOKS_KEPT", 3)
    hook("https://c.example/in", "shop")  # a fourth: the kept ones are let go first
    assert hook("https://a.example/in", "shop") is not first
