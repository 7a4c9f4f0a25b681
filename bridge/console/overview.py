"""GET /console/: the overview — poll budgets, running imports, active watches, channel health."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response

from bridge.console.context import ConsoleContext, console_of
from bridge.console.deliveries import channel_types, destinations
from bridge.console.page import operator_of, render
from bridge.events.import_view import ImportRecord, import_view
from bridge.store.ops import AccountFigures

RUNNING_SHOWN = 10
WATCHES_SHOWN = 10


@dataclass(frozen=True, slots=True)
class Budget:
    """An account's poll budget as the overview draws it."""

    name: str
    polls_last_hour: int
    polls_per_hour: int
    upstream_remaining: int | None
    paused_until: datetime | None
    active_jobs: int


def budget(figures: AccountFigures, *, polls_per_hour: int, now: datetime) -> Budget:
    """An account's budget as the overview draws it at `now`."""
    return Budget(
        name=figures.account,
        polls_last_hour=figures.polls_last_hour,
        polls_per_hour=polls_per_hour,
        upstream_remaining=figures.remaining_at(now),
        paused_until=figures.paused_at(now),
        active_jobs=figures.active_jobs,
    )


async def budgets(console: ConsoleContext) -> list[Budget]:
    """Every configured account's budget, now."""
    now = console.now()
    figures = await console.store.ops.accounts(list(console.accounts), now=now)
    return [
        budget(f, polls_per_hour=console.accounts[f.account].polls_per_hour, now=now)
        for f in figures
    ]


async def running_imports(console: ConsoleContext) -> list[ImportRecord]:
    """The newest imports still open or running."""
    found: list[ImportRecord] = []
    for status in ("running", "open"):
        page, _ = await console.store.imports.page(
            client=None, status=status, limit=RUNNING_SHOWN, cursor=None
        )
        found.extend(page)
    return sorted(found, key=lambda r: r.id, reverse=True)[:RUNNING_SHOWN]


async def overview(request: Request) -> Response:
    """The overview page."""
    operator_of(request)
    console = console_of(request)
    now = console.now()
    imports = await running_imports(console)
    watches, more = await console.store.watches.page(
        client=None, status="active", limit=WATCHES_SHOWN, cursor=None
    )
    names = await destinations(console)
    channels = await console.store.ops.channels(names)
    return render(
        request,
        "overview.html.j2",
        title="Overview",
        budgets=await budgets(console),
        imports=[import_view(r, now=now) for r in imports],
        watches=watches,
        more_watches=more is not None,
        channels=channels,
        channel_types=channel_types(console, names),
    )
