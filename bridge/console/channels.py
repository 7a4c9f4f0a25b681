"""GET /console/channels: each channel's health — backlog, dead deliveries, latest delivery and
latest error — and the Slack channels' own subscriptions."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from bridge.console.context import console_of
from bridge.console.deliveries import channel_types, destinations
from bridge.console.page import operator_of, render

SUBSCRIPTIONS_SHOWN = 200  # the rest: GET /v1/ops/subscriptions


async def list_channels(request: Request) -> Response:
    """The channels page."""
    operator_of(request)
    console = console_of(request)
    names = await destinations(console)
    figures = await console.store.ops.channels(names)
    types = channel_types(console, names)
    subscriptions, more = await console.store.subscriptions.page(
        limit=SUBSCRIPTIONS_SHOWN, cursor=None
    )
    return render(
        request,
        "channels.html.j2",
        title="Channels",
        channels=figures,
        types=types,
        subscriptions=subscriptions,
        more_subscriptions=more is not None,
    )
