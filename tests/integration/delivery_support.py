"""A deliverer as `serve` builds it, over a config with one client and webhooks to 127.0.0.1;
whether a webhook is signed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from random import Random

import httpx
import standardwebhooks

from bridge.clock import utcnow
from bridge.config import Config
from bridge.delivery.channels.registry import ChannelRegistry
from bridge.delivery.deliverer import Deliverer
from bridge.ops.metrics import Metrics
from bridge.store import Store


def signed_by(secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
    """Whether the webhook carries a good Standard Webhooks signature with `secret`."""
    try:
        standardwebhooks.Webhook(secret).verify(body, dict(headers))
    except standardwebhooks.WebhookVerificationError:
        return False
    return True


def delivery_config(
    secret: str, *, timeout_s: float, retry_schedule_s: list[float], api_key: str
) -> Config:
    """One account, one client (`shop`) signing with `secret`, webhooks to 127.0.0.1 allowed."""
    return Config.model_validate(
        {
            "upstream": {"accounts": {"main": {"api_key": api_key}}},
            "clients": {
                "shop": {"token": "shop-token", "accounts": ["main"], "webhook_secrets": [secret]}
            },
            "delivery": {
                "timeout_s": timeout_s,
                "retry_schedule_s": retry_schedule_s,
                "allowed_hosts": ["127.0.0.1"],
            },
        }
    )


def deliverer_for(
    settings: Config,
    store: Store,
    http: httpx.AsyncClient,
    *,
    on_free: Callable[[], None],
    owner: str,
    seed: int,
) -> Deliverer:
    """A deliverer as `serve` builds it, with a freed slot nudging the scheduler."""
    registry = ChannelRegistry(config=settings, http=http, state=store.channel_state, renderer=None)
    return Deliverer(
        store=store,
        channels=registry,
        settings=settings.delivery,
        metrics=Metrics(),
        now=utcnow,
        owner=owner,
        rng=Random(seed),
        on_free=on_free,
    )
