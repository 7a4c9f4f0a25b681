"""The imports pages: every import (cursor pages), one import with its jobs and failures, and its
failures as CSV."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from bridge.console.context import console_of
from bridge.console.page import not_found, operator_of, render
from bridge.events.failures_csv import failures_csv_stream
from bridge.events.import_view import import_view
from bridge.store.records import WATCH_STATUSES

PAGE_SIZE = 50
FAILURES_SHOWN = 50
IMPORT_ID = re.compile(r"imp_[0-9a-f]{32}")
IMPORT_STATUSES = ("open", "running", "completed", "partially_completed", "failed", "cancelled")
_CURSOR = re.compile(r"[a-z]{3}_[0-9a-f]{32}")


def cursor_of(request: Request) -> str | None:
    """The page's cursor (an id) if it looks like one, else the first page."""
    value = request.query_params.get("cursor")
    return value if value and _CURSOR.fullmatch(value) else None


def status_of(request: Request, allowed: tuple[str, ...]) -> str | None:
    """The status filter if it is one of `allowed`, else none."""
    value = request.query_params.get("status")
    return value if value in allowed else None


async def list_imports(request: Request) -> Response:
    """GET /console/imports: every client's imports, newest first."""
    operator_of(request)
    console = console_of(request)
    status = status_of(request, IMPORT_STATUSES)
    page, next_cursor = await console.store.imports.page(
        client=None, status=status, limit=PAGE_SIZE, cursor=cursor_of(request)
    )
    now = console.now()
    return render(
        request,
        "imports.html.j2",
        title="Imports",
        imports=[(r, import_view(r, now=now)) for r in page],
        status=status,
        statuses=IMPORT_STATUSES,
        next_href=_next_href(request.url.path, status=status, cursor=next_cursor),
    )


def _next_href(path: str, *, status: str | None = None, cursor: str | None) -> str | None:
    if cursor is None:
        return None
    return path + "?" + urlencode({k: v for k, v in (("status", status), ("cursor", cursor)) if v})


async def show_import(request: Request) -> Response:
    """GET /console/imports/{import_id}: progress, ETA, its jobs (paged) and failures."""
    operator_of(request)
    console = console_of(request)
    import_id = request.path_params["import_id"]
    record = (
        await console.store.imports.get(import_id=import_id)
        if IMPORT_ID.fullmatch(import_id)
        else None
    )
    if record is None:
        return not_found(request, "import")
    jobs, next_cursor = await console.store.imports.jobs(
        import_id=record.id, limit=PAGE_SIZE, cursor=cursor_of(request)
    )
    failures = await console.store.imports.failures(import_id=record.id, limit=FAILURES_SHOWN + 1)
    return render(
        request,
        "import.html.j2",
        title=f"Import {record.name}",
        record=record,
        view=import_view(record, now=console.now()),
        jobs=jobs,
        next_href=_next_href(request.url.path, cursor=next_cursor),
        failures=failures[:FAILURES_SHOWN],
        more_failures=len(failures) > FAILURES_SHOWN,
        watch_statuses=WATCH_STATUSES,
    )


async def failures_file(request: Request) -> Response:
    """GET /console/imports/{import_id}/failures.csv: every failed image, streamed."""
    operator_of(request)
    console = console_of(request)
    import_id = request.path_params["import_id"]
    if not IMPORT_ID.fullmatch(import_id) or not await console.store.imports.get(
        import_id=import_id
    ):
        return not_found(request, "import")
    return StreamingResponse(
        failures_csv_stream(console.store.imports.iter_failures(import_id=import_id)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{import_id}-failures.csv"'},
    )
