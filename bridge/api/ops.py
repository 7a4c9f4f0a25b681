"""Handlers for /v1/ops (operator tokens only): every delivery, redelivery of dead ones, the
accounts' poll budgets and the channels' health."""

from __future__ import annotations

import logging
from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response

from bridge.api.context import ApiContext, api_of, json_response, operator_of
from bridge.api.deliveries import redeliver
from bridge.api.errors import invalid
from bridge.api.ops_schemas import (
    AccountBudget,
    AccountList,
    ChannelHealth,
    ChannelList,
    OpsDeliveriesQuery,
    OpsDeliveryEnvelope,
    OpsDeliveryPage,
    Retried,
    RetryDeadDeliveries,
    ops_delivery_view,
)
from bridge.api.parse import parse_body, parse_query
from bridge.events.routing import WEBHOOK_URL, Router
from bridge.events.subscriptions import SLACK_APP_PREFIX
from bridge.store.ops import AccountFigures

log = logging.getLogger(__name__)


async def list_deliveries(request: Request) -> Response:
    """GET /v1/ops/deliveries: every watch's deliveries, newest first, by status and channel."""
    operator_of(request)
    query = parse_query(request, OpsDeliveriesQuery)
    page, next_cursor = await api_of(request).store.ops.deliveries_page(
        status=query.status, destination=query.channel, limit=query.limit, cursor=query.cursor
    )
    return json_response(
        OpsDeliveryPage(deliveries=[ops_delivery_view(r) for r in page], next_cursor=next_cursor)
    )


async def retry_delivery(request: Request) -> Response:
    """POST /v1/ops/deliveries/{delivery_id}/retry: send a dead delivery to any channel again."""
    operator = operator_of(request)
    record = await redeliver(request, client=None, destination=None)
    log.info(
        "operator redelivered a dead delivery",
        extra={"operator": operator, "delivery_id": record.id, "channel": record.destination},
    )
    return json_response(OpsDeliveryEnvelope(delivery=ops_delivery_view(record)), status=202)


async def retry_dead(request: Request) -> Response:
    """POST /v1/ops/deliveries/retry: send every matching dead delivery again, in order."""
    operator = operator_of(request)
    api = api_of(request)
    body = await parse_body(request, RetryDeadDeliveries)
    if body.channel is not None and not _known(api, body.channel):
        raise invalid("channel", f"no configured channel {body.channel!r}")
    retried = await api.store.ops.retry_dead(
        destination=body.channel, since=body.since, now=api.now()
    )
    log.info(
        "operator redelivered dead deliveries",
        extra={
            "operator": operator,
            "channel": body.channel,
            "since": body.since.isoformat() if body.since else None,
            "retried": retried,
        },
    )
    return json_response(Retried(retried=retried), status=202)


def _budget(figures: AccountFigures, *, polls_per_hour: int, now: datetime) -> AccountBudget:
    return AccountBudget(
        name=figures.account,
        polls_last_hour=figures.polls_last_hour,
        polls_per_hour=polls_per_hour,
        upstream_remaining=figures.remaining_at(now),
        paused_until=figures.paused_at(now),
        active_jobs=figures.active_jobs,
    )


async def list_accounts(request: Request) -> Response:
    """GET /v1/ops/accounts: each upstream account's poll budget as the store counts it."""
    operator_of(request)
    api = api_of(request)
    now = api.now()
    figures = await api.store.ops.accounts(list(api.accounts), now=now)
    budgets = [
        _budget(f, polls_per_hour=api.accounts[f.account].polls_per_hour, now=now) for f in figures
    ]
    return json_response(AccountList(accounts=budgets))


def _known(api: ApiContext, channel: str) -> bool:
    """A configured channel, watches' own webhooks, or a Slack channel of the app (subscribed now
    or before: its dead deliveries may still be sent again)."""
    if channel.startswith(SLACK_APP_PREFIX):
        return len(channel) > len(SLACK_APP_PREFIX)
    return channel in api.channels or channel == WEBHOOK_URL


async def subscribed_channels(api: ApiContext) -> list[str]:
    """The destinations of the Slack app's subscribed channels that no configured channel posts
    to (`slack-app:<channel id>`), in order."""
    router = Router(routes=(), channels=api.channels)
    found = await api.store.subscriptions.current()
    names = {router.subscription_destination(s.channel_id) for s in found.subscriptions}
    return sorted(names - set(api.channels))


async def list_channels(request: Request) -> Response:
    """GET /v1/ops/channels: each configured channel's backlog and latest delivery and error, then
    each channel subscribed through the Slack app that no configured channel posts to."""
    operator_of(request)
    api = api_of(request)
    figures = await api.store.ops.channels([*api.channels, *await subscribed_channels(api)])
    return json_response(
        ChannelList(
            channels=[
                ChannelHealth(
                    name=f.destination,
                    type=_type(api, f.destination),
                    pending=f.pending,
                    dead=f.dead,
                    last_delivered_at=f.last_delivered_at,
                    last_error=f.last_error,
                    last_error_at=f.last_error_at,
                )
                for f in figures
            ]
        )
    )


def _type(api: ApiContext, name: str) -> str:
    configured = api.channels.get(name)
    return configured.type if configured is not None else "slack"
