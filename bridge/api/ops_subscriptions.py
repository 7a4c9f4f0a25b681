"""GET /v1/ops/subscriptions (operator tokens only): the Slack channels' own subscriptions."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from bridge.api.context import api_of, json_response, operator_of
from bridge.api.ops_schemas import OpsSubscriptionsQuery, SlackSubscription, SlackSubscriptionPage
from bridge.api.parse import parse_query
from bridge.events.subscriptions import Subscription


def subscription_view(sub: Subscription) -> SlackSubscription:
    """A subscription as the operator API shows it."""
    return SlackSubscription(
        id=sub.id,
        team_id=sub.team_id,
        channel_id=sub.channel_id,
        kind=sub.kind,
        target=sub.target,
        account=sub.account,
        events=list(sub.events),
        created_by=sub.created_by,
        created_at=sub.created_at,
    )


async def list_subscriptions(request: Request) -> Response:
    """GET /v1/ops/subscriptions: every channel's subscriptions, oldest first, a page at a time."""
    operator_of(request)
    query = parse_query(request, OpsSubscriptionsQuery)
    page, next_cursor = await api_of(request).store.subscriptions.page(
        limit=query.limit, cursor=query.cursor
    )
    return json_response(
        SlackSubscriptionPage(
            subscriptions=[subscription_view(s) for s in page], next_cursor=next_cursor
        )
    )
