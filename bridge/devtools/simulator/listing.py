"""One page of GET /product-photo-jobs: a key's job summaries, newest first, with a cursor."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from bridge.devtools.simulator.progress import SimJob, format_time, render_job, summary_of
from bridge.devtools.simulator.settings import SimulatorSettings


def page_of(
    jobs: Iterable[SimJob],
    *,
    settings: SimulatorSettings,
    now: datetime,
    limit: int,
    cursor: datetime | None,
    status: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Return up to `limit` summaries listed before `cursor` with `status`, and the next cursor."""
    page: list[tuple[SimJob, dict[str, Any]]] = []
    for job in sorted(jobs, key=lambda j: j.listed_at, reverse=True):
        if cursor is not None and job.listed_at >= cursor:
            continue
        summary = summary_of(job, render_job(job, now=now, settings=settings))
        if status is None or summary.get("status") == status:
            page.append((job, summary))
        if len(page) > limit:
            break
    more = len(page) > limit
    next_cursor = format_time(page[limit - 1][0].listed_at) if more else None
    return [summary for _, summary in page[:limit]], next_cursor
