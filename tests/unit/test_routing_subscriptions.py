"""Routing with the Slack app's subscriptions and mutes: a subscribed channel hears a job or an
import exactly as a route to it would, once per channel, and a mute silences routes and
subscriptions alike for that job or import."""

from datetime import UTC, datetime

import pytest

from bridge.config import parse_config
from bridge.events.routing import WEBHOOK_URL, Router, WatchRoute
from bridge.events.subscriptions import (
    Mute,
    Subscription,
    SubscriptionBook,
    SubscriptionSet,
    job_target,
    slack_app_destination,
)

CONFIG = parse_config(
    """
upstream: {accounts: {main: {api_key: k1}, other: {api_key: k2}}}
clients:
  shop: {token: shop-token-1, accounts: [main, other]}
channels:
  hook: {type: webhook, url: "https://erp.example.com/h", secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
  catalog: {type: slack, token: xoxb-1, channel: C1}
  by-job: {type: slack, token: xoxb-1, channel: C2}
routes:
  - {events: ["job.*", "item.failed"], accounts: [main], channels: [catalog, hook]}
  - {events: ["job.*"], accounts: [other], channels: [by-job], group_by: job}
""",
    env={},
)
NO_ROUTES = CONFIG.model_copy(update={"routes": []})
JOB = "3f1c2b9a-0000-4000-8000-000000000001"
OTHER_JOB = "3f1c2b9a-0000-4000-8000-000000000002"
IMP = "imp_0194c3a1b2c3d4e5f60718293a4b5c6d"
OTHER_IMP = "imp_0194c3a1b2c3d4e5f60718293a4b5c6e"
APP9 = slack_app_destination("C9")
APP8 = slack_app_destination("C8")


def sub(kind, target, *, channel="C9", events=("*",), account=None, n=1):
    return Subscription(
        id=f"sub_{channel}_{kind}_{n}",
        team_id="T1",
        channel_id=channel,
        kind=kind,
        target=target,
        account=account,
        events=tuple(events),
        created_by="U1",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def mute_job(channel, account="main", job_id=JOB):
    return Mute(channel, "job", job_target(account, job_id))


def mute_import(channel, import_id=IMP):
    return Mute(channel, "import", import_id)


def job(account="main", *, job_id=JOB, import_id=None, webhook_url=None):
    """A watch of one job (in an import, when given)."""
    return WatchRoute("shop", account, webhook_url, ("*",), import_id=import_id, job_id=job_id)


def import_itself(account="main", import_id=IMP):
    """The import's own events (import.started, import.progress, ...)."""
    return WatchRoute("shop", account, None, ("*",), import_id=import_id, job_id=None)


def router(subscriptions=(), mutes=(), *, routes=True):
    book = SubscriptionBook(SubscriptionSet(tuple(subscriptions), frozenset(mutes)))
    return Router.from_config(CONFIG if routes else NO_ROUTES, book)


@pytest.mark.parametrize(
    ("subscriptions", "event_type", "watch", "expected"),
    [
        # account subscriptions: every job of the account, told inside its import when it has one
        ([sub("account", "main")], "item.completed", job(), [(APP9, False)]),
        ([sub("account", "main")], "item.completed", job(import_id=IMP), [(APP9, True)]),
        ([sub("account", "main")], "import.progress", import_itself(), [(APP9, True)]),
        ([sub("account", "other")], "item.completed", job(), []),
        ([sub("account", "main")], "item.completed", job("other"), []),
        # import subscriptions: its jobs and its own events, in the import's message
        ([sub("import", IMP, account="main")], "item.failed", job(import_id=IMP), [(APP9, True)]),
        ([sub("import", IMP)], "import.completed", import_itself(), [(APP9, True)]),
        ([sub("import", IMP)], "item.failed", job(import_id=OTHER_IMP), []),
        ([sub("import", IMP)], "item.failed", job(), []),
        # job subscriptions: that job on its own, even inside an import
        ([sub("job", JOB, account="main")], "job.processing", job(), [(APP9, False)]),
        ([sub("job", JOB)], "job.processing", job(import_id=IMP), [(APP9, False)]),
        ([sub("job", JOB, account="other")], "job.processing", job(), []),
        ([sub("job", JOB)], "job.processing", job(job_id=OTHER_JOB), []),
        ([sub("job", JOB)], "import.progress", import_itself(), []),
    ],
)
def test_routing_subscriptions_cover_accounts_imports_and_jobs(
    subscriptions, event_type, watch, expected
):
    found = router(subscriptions, routes=False).grouped_destinations(event_type, watch)

    assert found == expected


@pytest.mark.parametrize(
    ("events", "event_type", "heard"),
    [
        (("*",), "item.updated", True),
        (("job.*",), "job.completed", True),
        (("job.*",), "item.failed", False),
        (("item.failed",), "item.failed", True),
        (("item.failed",), "item.completed", False),
        (("job.*", "item.failed"), "item.failed", True),
        (("import.*",), "import.stalled", True),
        (("import.*",), "job.completed", False),
    ],
)
def test_routing_subscriptions_take_only_their_event_patterns(events, event_type, heard):
    watch = import_itself() if event_type.startswith("import.") else job()
    subscribed = [sub("account", "main", events=events)]
    found = router(subscribed, routes=False).destinations(event_type, watch)

    assert (APP9 in found) is heard


@pytest.mark.parametrize(
    ("subscriptions", "event_type", "watch", "expected"),
    [
        # a route to `catalog` (C1) and a subscription of C1: one destination, as the route says
        (
            [sub("account", "main", channel="C1")],
            "job.processing",
            job(import_id=IMP),
            [("catalog", True), ("hook", False)],
        ),
        # the route does not take item.completed; the subscription brings it to `catalog` anyway
        ([sub("account", "main", channel="C1")], "item.completed", job(), [("catalog", False)]),
        # a group_by: job route to `by-job` (C2): the route's grouping, the subscription adds nothing
        (
            [sub("account", "other", channel="C2")],
            "job.processing",
            job("other", import_id=IMP),
            [("by-job", False)],
        ),
        # the subscription alone decides the grouping when no route takes the event
        (
            [sub("account", "other", channel="C2")],
            "item.failed",
            job("other", import_id=IMP),
            [("by-job", True)],
        ),
        # two subscriptions of one channel: told once
        (
            [sub("account", "main"), sub("job", JOB, n=2)],
            "item.completed",
            job(),
            [(APP9, False)],
        ),
        # two channels: each once, in subscription order, after the routes and the watch's webhook
        (
            [sub("account", "main", channel="C8"), sub("job", JOB)],
            "item.failed",
            job(webhook_url="https://shop.example.com/hook"),
            [
                (WEBHOOK_URL, False),
                ("catalog", False),
                ("hook", False),
                (APP8, False),
                (APP9, False),
            ],
        ),
    ],
)
def test_routing_subscriptions_tell_a_channel_once_with_routes_to_it(
    subscriptions, event_type, watch, expected
):
    assert router(subscriptions).grouped_destinations(event_type, watch) == expected


def test_routing_subscription_destination_prefers_the_configured_channel_posting_there():
    assert router().subscription_destination("C1") == "catalog"
    assert router().subscription_destination("C9") == APP9


EVERYONE = [sub("account", "main"), sub("account", "main", channel="C8")]


@pytest.mark.parametrize(
    ("mutes", "event_type", "watch", "expected"),
    [
        ([], "job.processing", job(), ["catalog", "hook", APP9, APP8]),
        # a job muted in C9: only C9 stops hearing of it
        ([mute_job("C9")], "job.processing", job(), ["catalog", "hook", APP8]),
        (
            [mute_job("C9")],
            "job.processing",
            job(job_id=OTHER_JOB),
            ["catalog", "hook", APP9, APP8],
        ),
        (
            [mute_job("C9", account="other")],
            "job.processing",
            job(),
            ["catalog", "hook", APP9, APP8],
        ),
        # a mute in C1 silences the configured channel posting there, never a webhook
        ([mute_job("C1")], "job.processing", job(), ["hook", APP9, APP8]),
        (
            [mute_job("C1")],
            "job.processing",
            job(webhook_url="https://shop.example.com/hook"),
            [WEBHOOK_URL, "hook", APP9, APP8],
        ),
        # an import muted: its jobs and its own events, through routes and subscriptions
        ([mute_import("C9")], "item.failed", job(import_id=IMP), ["catalog", "hook", APP8]),
        ([mute_import("C9")], "import.progress", import_itself(), [APP8]),
        ([mute_import("C1")], "item.failed", job(import_id=IMP), ["hook", APP9, APP8]),
        (
            [mute_import("C9")],
            "item.failed",
            job(import_id=OTHER_IMP),
            ["catalog", "hook", APP9, APP8],
        ),
        ([mute_import("C9")], "item.failed", job(), ["catalog", "hook", APP9, APP8]),
        # a job of an import muted by itself in C9: its import's other jobs still heard
        ([mute_job("C9")], "item.failed", job(import_id=IMP), ["catalog", "hook", APP8]),
        (
            [mute_job("C9")],
            "item.failed",
            job(job_id=OTHER_JOB, import_id=IMP),
            ["catalog", "hook", APP9, APP8],
        ),
        ([mute_job("C9"), mute_job("C8"), mute_job("C1")], "job.processing", job(), ["hook"]),
    ],
)
def test_routing_mutes_silence_routes_and_subscriptions_for_that_job_or_import(
    mutes, event_type, watch, expected
):
    assert router(EVERYONE, mutes).destinations(event_type, watch) == expected


def test_routing_mute_silences_a_subscription_to_the_muted_job_itself():
    subscribed = [sub("job", JOB), sub("import", IMP, n=2, channel="C8")]

    found = router(subscribed, [mute_job("C9"), mute_import("C8")]).destinations(
        "item.failed", job(import_id=IMP)
    )

    assert found == ["catalog", "hook"]
