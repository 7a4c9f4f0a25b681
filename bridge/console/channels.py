"""GET /console/channels: each channel's health — backlog, dead deliveries, latest delivery and
latest error."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from bridge.console.context import console_of
from bridge.console.deliveries import destinations
from bridge.console.page import operator_of, render
from bridge.events.routing import WEBHOOK_URL


async def list_channels(request: Request) -> Response:
    """The channels page."""
    operator_of(request)
    console = console_of(request)
    figures = await console.store.ops.channels(destinations(console))
    types: dict[str, str] = {name: c.type for name, c in console.channels.items()}
    types[WEBHOOK_URL] = "watches' own webhooks"
    return render(request, "channels.html.j2", title="Channels", channels=figures, types=types)
