"""Handlers for /v1/imports: create an import, add jobs to it, close, read, list and cancel it.

A client reads and changes only its own imports (another client's is a 404 import_not_found); an
operator reads every import (here and under /v1/ops/imports) and changes none.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response

from bridge.api.context import api_of, client_of, json_response, operator_of, reader_of
from bridge.api.errors import invalid
from bridge.api.import_schemas import (
    AddJobs,
    CreateImport,
    ImportPage,
    ListImportsQuery,
    WatchList,
    import_envelope,
    import_model,
)
from bridge.api.parse import parse_body, parse_query
from bridge.api.registration import (
    allowed_account,
    check_webhook,
    idempotency_key,
    import_closed,
    import_not_found,
    watch_limit_reached,
)
from bridge.api.schemas import IMPORT_ID_PATTERN, watch_view
from bridge.events.import_view import ImportRecord
from bridge.store import WatchLimitReached
from bridge.store.imports import ImportClosed, ImportNotFound

MAX_METADATA_KEYS = 20
_IMPORT_ID = re.compile(IMPORT_ID_PATTERN)


def path_import_id(request: Request) -> str:
    """The path's import id; one that cannot exist is a 404 like any unknown one."""
    import_id = str(request.path_params["import_id"])
    if not _IMPORT_ID.fullmatch(import_id):
        raise import_not_found()
    return import_id


async def readable_import(request: Request, reader: str | None) -> ImportRecord:
    """The path's import if `reader` (a client, or None for an operator) may read it."""
    record = await api_of(request).store.imports.get(
        import_id=path_import_id(request), client=reader
    )
    if record is None:
        raise import_not_found()
    return record


def check_metadata(base: Mapping[str, str], extra: Mapping[str, str]) -> None:
    """A job's metadata is the import's with its own over it: at most 20 keys, as a watch's."""
    if len({**base, **extra}) > MAX_METADATA_KEYS:
        raise invalid("metadata", "with the import's own, more than 20 keys")


def _check_replay(record: ImportRecord, asked: tuple[object, ...]) -> None:
    """A repeated Idempotency-Key must come with the request that made the import."""
    found = (
        record.account,
        record.name,
        record.webhook_url,
        list(record.events),
        record.metadata,
        record.tally.expected_jobs,
    )
    if asked != found:
        raise invalid("Idempotency-Key", "was already used with a different request body")


async def create_import(request: Request) -> Response:
    """POST /v1/imports: create an open import; a repeated Idempotency-Key returns the same one."""
    api = api_of(request)
    client_name = client_of(request)
    client = api.clients[client_name]
    key = idempotency_key(request)
    body = await parse_body(request, CreateImport)
    account = allowed_account(body.account, client=client, accounts=api.accounts)
    if body.webhook_url is not None:
        await check_webhook(body.webhook_url, client=client, api=api)
    events = list(body.events or ["*"])
    metadata = dict(body.metadata or {})
    record, created = await api.store.imports.create(
        client=client_name,
        account=account,
        name=body.name,
        webhook_url=body.webhook_url,
        events=events,
        metadata=metadata,
        expected_jobs=body.expected_jobs,
        idempotency_key=key,
        now=api.now(),
    )
    if not created:
        asked = (account, body.name, body.webhook_url, events, metadata, body.expected_jobs)
        _check_replay(record, asked)
    headers = {} if created else {"Idempotent-Replayed": "true"}
    return json_response(import_envelope(record, now=api.now()), status=201, headers=headers)


async def add_jobs(request: Request) -> Response:
    """POST /v1/imports/{import_id}/jobs: one watch per job; a job already in it keeps its watch."""
    api = api_of(request)
    client_name = client_of(request)
    found = await readable_import(request, client_name)
    body = await parse_body(request, AddJobs)
    metadata = dict(body.metadata or {})
    check_metadata(found.metadata, metadata)
    try:
        records = await api.store.imports.add_jobs(
            import_id=found.id,
            client=client_name,
            job_ids=body.job_ids,
            metadata=metadata,
            now=api.now(),
            ttl=api.import_job_ttl,
            planner=api.imports,
            max_active=api.clients[client_name].max_active_watches,
        )
    except ImportNotFound:
        raise import_not_found() from None
    except ImportClosed:
        raise import_closed() from None
    except WatchLimitReached as exc:
        raise watch_limit_reached(exc.limit) from None
    return json_response(WatchList(watches=[watch_view(r) for r in records]), status=201)


async def close_import(request: Request) -> Response:
    """POST /v1/imports/{import_id}/close: no more jobs; it ends when its jobs have."""
    api = api_of(request)
    client_name = client_of(request)
    try:
        record = await api.store.imports.close(
            import_id=path_import_id(request),
            client=client_name,
            now=api.now(),
            planner=api.imports,
        )
    except ImportNotFound:
        raise import_not_found() from None
    return json_response(import_envelope(record, now=api.now()))


async def cancel_import(request: Request) -> Response:
    """DELETE /v1/imports/{import_id}: cancel it and its active watches; an ended one stays."""
    api = api_of(request)
    client_name = client_of(request)
    try:
        record = await api.store.imports.cancel(
            import_id=path_import_id(request),
            client=client_name,
            now=api.now(),
            planner=api.imports,
        )
    except ImportNotFound:
        raise import_not_found() from None
    return json_response(import_envelope(record, now=api.now()))


async def _get(request: Request, reader: str | None) -> Response:
    record = await readable_import(request, reader)
    return json_response(import_envelope(record, now=api_of(request).now()))


async def _list(request: Request, reader: str | None) -> Response:
    api = api_of(request)
    query = parse_query(request, ListImportsQuery)
    page, next_cursor = await api.store.imports.page(
        client=reader, status=query.status, limit=query.limit, cursor=query.cursor
    )
    now = api.now()
    return json_response(
        ImportPage(imports=[import_model(r, now=now) for r in page], next_cursor=next_cursor)
    )


async def get_import(request: Request) -> Response:
    """GET /v1/imports/{import_id}: the client's import (an operator's: anyone's)."""
    return await _get(request, reader_of(request))


async def list_imports(request: Request) -> Response:
    """GET /v1/imports: the client's imports (an operator's: everyone's), newest first."""
    return await _list(request, reader_of(request))


async def ops_get_import(request: Request) -> Response:
    """GET /v1/ops/imports/{import_id}: any client's import."""
    operator_of(request)
    return await _get(request, None)


async def ops_list_imports(request: Request) -> Response:
    """GET /v1/ops/imports: every client's imports, newest first."""
    operator_of(request)
    return await _list(request, None)
