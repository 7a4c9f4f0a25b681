import pytest

from bridge.config import parse_config
from bridge.events.routing import WEBHOOK_URL, Router, WatchRoute, destinations, matches

CONFIG = parse_config(
    """
upstream: {accounts: {main: {api_key: k1}, other: {api_key: k2}}}
clients:
  shop: {token: shop-token-1, accounts: [main, other]}
  erp: {token: erp-token-12, accounts: [main]}
channels:
  hook: {type: webhook, url: "https://erp.example.com/h", secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
  slack: {type: slack, token: xoxb-1, channel: C1}
  mail: {type: email, host: smtp.example.com, from: a@example.com, to: [b@example.com], mode: summary}
  mail-all: {type: email, host: smtp.example.com, from: a@example.com, to: [b@example.com], mode: events}
routes:
  - {events: ["job.*", "item.failed"], channels: [slack, hook]}
  - {events: ["*"], accounts: [other], channels: [mail, slack]}
  - {events: ["item.*"], clients: [erp], channels: [mail-all]}
""",
    env={},
)


@pytest.mark.parametrize(
    ("pattern", "event_type", "expected"),
    [
        ("*", "item.failed", True),
        ("job.*", "job.completed", True),
        ("job.*", "item.completed", False),
        ("item.failed", "item.failed", True),
        ("item.failed", "item.failed2", False),
        ("item.*", "item.updated", True),
        ("watch.*", "watch.expired", True),
        ("job.", "job.queued", False),
    ],
)
def test_routing_matches(pattern, event_type, expected):
    assert matches(pattern, event_type) is expected


@pytest.mark.parametrize(
    ("event_type", "watch", "expected"),
    [
        ("job.processing", WatchRoute("shop", "main", None, ("*",)), ["slack", "hook"]),
        ("item.completed", WatchRoute("shop", "main", None, ("*",)), []),
        (
            "item.completed",
            WatchRoute("shop", "main", "https://x.example/h", ("*",)),
            [WEBHOOK_URL],
        ),
        ("item.completed", WatchRoute("shop", "main", "https://x.example/h", ("job.*",)), []),
        (
            "item.failed",
            WatchRoute("shop", "main", "https://x.example/h", ("item.failed",)),
            [WEBHOOK_URL, "slack", "hook"],
        ),
        # summary-mode email only takes the end of a job; slack is listed once
        ("job.processing", WatchRoute("shop", "other", None, ("*",)), ["slack", "hook"]),
        ("job.completed", WatchRoute("shop", "other", None, ("*",)), ["slack", "hook", "mail"]),
        ("watch.expired", WatchRoute("shop", "other", None, ("*",)), ["mail", "slack"]),
        ("item.updated", WatchRoute("erp", "main", None, ("*",)), ["mail-all"]),
        ("item.updated", WatchRoute("shop", "main", None, ("*",)), []),
    ],
)
def test_routing_destinations(event_type, watch, expected):
    assert destinations(event_type, watch, Router.from_config(CONFIG)) == expected
