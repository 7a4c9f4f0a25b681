"""The deliveries page (every delivery, filtered by status and channel, cursor pages) and its two
forms: "Redeliver" on a dead delivery and "Redeliver all" for a channel, through the same store
calls as the operator API's retries."""

from __future__ import annotations

import logging
import re
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bridge.console.context import ConsoleContext, console_of
from bridge.console.imports import cursor_of, status_of
from bridge.console.page import checked_form, operator_of, render, safe_back
from bridge.events.routing import WEBHOOK_URL, Router
from bridge.events.subscriptions import SLACK_APP_PREFIX
from bridge.store.records import DELIVERY_STATUSES

log = logging.getLogger(__name__)
PAGE_SIZE = 50
DELIVERY_ID = re.compile(r"dlv_[0-9a-f]{32}")


async def destinations(console: ConsoleContext) -> list[str]:
    """Every channel a delivery can go to: the configured ones, the Slack channels subscribed
    through the Slack app that no configured channel posts to, and watches' own webhooks."""
    router = Router(routes=(), channels=console.channels)
    found = await console.store.subscriptions.current()
    subscribed = {router.subscription_destination(s.channel_id) for s in found.subscriptions}
    return [*sorted(console.channels), *sorted(subscribed - set(console.channels)), WEBHOOK_URL]


def channel_types(console: ConsoleContext, names: list[str]) -> dict[str, str]:
    """What kind of channel each destination is, for the pages that list them."""
    types = {name: "slack (Slack app)" for name in names if name.startswith(SLACK_APP_PREFIX)}
    types.update({name: c.type for name, c in console.channels.items()})
    types[WEBHOOK_URL] = "watches' own webhooks"
    return types


def _known(channel: str | None, listed: list[str]) -> bool:
    """Listed, or a Slack app channel no longer subscribed (its deliveries are still stored)."""
    if channel is None:
        return False
    app = channel.startswith(SLACK_APP_PREFIX) and len(channel) > len(SLACK_APP_PREFIX)
    return app or channel in listed


def _flash(request: Request, back: str, message: str) -> Response:
    """Back to the page, which shows `message` once (kept in the session, not the URL)."""
    request.session["flash"] = message
    return RedirectResponse(back, status_code=303)


async def list_deliveries(request: Request) -> Response:
    """GET /console/deliveries?status=&channel=&cursor=: deliveries newest first."""
    operator_of(request)
    console = console_of(request)
    status = status_of(request, DELIVERY_STATUSES)
    channel = request.query_params.get("channel")
    listed = await destinations(console)
    if not _known(channel, listed):
        channel = None
    page, next_cursor = await console.store.ops.deliveries_page(
        status=status, destination=channel, limit=PAGE_SIZE, cursor=cursor_of(request)
    )
    filters = {k: v for k, v in (("status", status), ("channel", channel)) if v}
    return render(
        request,
        "deliveries.html.j2",
        title="Deliveries",
        deliveries=page,
        status=status,
        channel=channel,
        statuses=DELIVERY_STATUSES,
        channels=listed if channel is None or channel in listed else [*listed, channel],
        next_query=urlencode({**filters, "cursor": next_cursor}) if next_cursor else None,
        here=request.url.path + (f"?{urlencode(filters)}" if filters else ""),
    )


async def redeliver(request: Request) -> Response:
    """POST /console/deliveries/{delivery_id}/redeliver: send one dead delivery again."""
    operator = operator_of(request)
    form = await checked_form(request)
    console = console_of(request)
    back = safe_back(str(form.get("back") or ""), "/console/deliveries?status=dead")
    delivery_id = request.path_params["delivery_id"]
    outcome = (
        await console.store.outbox.retry(delivery_id=delivery_id, now=console.now())
        if DELIVERY_ID.fullmatch(delivery_id)
        else None
    )
    if outcome is None:
        return _flash(request, back, "No such delivery.")
    record, retried = outcome
    if not retried:
        return _flash(request, back, f"Not redelivered: the delivery is {record.status}, not dead.")
    log.info(
        "operator redelivered a dead delivery",
        extra={"operator": operator, "delivery_id": record.id, "channel": record.destination},
    )
    return _flash(request, back, "Redelivery queued.")


async def redeliver_all(request: Request) -> Response:
    """POST /console/deliveries/redeliver: every dead delivery of one channel goes again, in order."""
    operator = operator_of(request)
    form = await checked_form(request)
    console = console_of(request)
    back = safe_back(str(form.get("back") or ""), "/console/deliveries?status=dead")
    channel = str(form.get("channel") or "")
    if not _known(channel, await destinations(console)):
        return _flash(request, back, "No such channel.")
    retried = await console.store.ops.retry_dead(destination=channel, since=None, now=console.now())
    log.info(
        "operator redelivered dead deliveries",
        extra={"operator": operator, "channel": channel, "retried": retried},
    )
    return _flash(request, back, f"{retried} dead deliveries to {channel} queued again.")
