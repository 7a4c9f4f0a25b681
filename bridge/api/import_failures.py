"""GET /v1/imports/{import_id}/failures: an import's failed images as JSON pages, or as one CSV
streamed a batch at a time (never held whole), safe to open in a spreadsheet."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from bridge.api.context import api_of, json_response, operator_of, reader_of
from bridge.api.import_schemas import FailurePage, FailuresQuery, failure_model
from bridge.api.imports import readable_import
from bridge.api.parse import parse_query
from bridge.events.failures_csv import failures_csv_stream

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"


def _wants_csv(request: Request, query: FailuresQuery) -> bool:
    if query.format is not None:
        return query.format == "csv"
    accept = request.headers.get("accept", "")
    return any(part.split(";", 1)[0].strip().lower() == "text/csv" for part in accept.split(","))


async def _failures(request: Request, reader: str | None) -> Response:
    record = await readable_import(request, reader)
    query = parse_query(request, FailuresQuery)
    imports = api_of(request).store.imports
    if _wants_csv(request, query):
        return StreamingResponse(
            failures_csv_stream(imports.iter_failures(import_id=record.id)),
            media_type=CSV_MEDIA_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{record.id}-failures.csv"'},
        )
    after = int(query.cursor) if query.cursor is not None else None
    found = await imports.failures(import_id=record.id, limit=query.limit + 1, after=after)
    page = found[: query.limit]
    next_cursor = str(page[-1].id) if len(found) > query.limit else None
    return json_response(
        FailurePage(failures=[failure_model(f) for f in page], next_cursor=next_cursor)
    )


async def list_failures(request: Request) -> Response:
    """GET /v1/imports/{import_id}/failures: the client's import (an operator's: anyone's)."""
    return await _failures(request, reader_of(request))


async def ops_list_failures(request: Request) -> Response:
    """GET /v1/ops/imports/{import_id}/failures: any client's import's failures."""
    operator_of(request)
    return await _failures(request, None)
