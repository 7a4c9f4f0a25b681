"""Handlers for /v1/watches: register, read, list, cancel, and a watch's events and deliveries.

A client reads and cancels only its own watches (another client's is a 404) and sees only the
deliveries to its own webhook_url; an operator reads every watch and every delivery, and changes none.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from bridge.api.context import api_of, client_of, json_response, reader_of
from bridge.api.errors import ApiError, invalid
from bridge.api.imports import check_metadata
from bridge.api.parse import parse_body, parse_query
from bridge.api.registration import (
    allowed_account,
    check_webhook,
    idempotency_key,
    import_closed,
    import_not_found,
    watch_limit_reached,
)
from bridge.api.schemas import (
    WATCH_ID_PATTERN,
    CreateWatch,
    DeliveryList,
    EventList,
    ListWatchesQuery,
    WatchEnvelope,
    WatchPage,
    delivery_view,
    event_view,
    watch_view,
)
from bridge.events.routing import WEBHOOK_URL
from bridge.store import WatchLimitReached, WatchRecord
from bridge.store.imports import ImportClosed, ImportNotFound

_WATCH_ID = re.compile(WATCH_ID_PATTERN)


def _not_found() -> ApiError:
    return ApiError(404, "watch_not_found", "no such watch")


async def _readable_watch(request: Request, reader: str | None) -> WatchRecord:
    """The path's watch if `reader` (a client, or None for an operator) may read it; another
    client's watch does not exist."""
    watch_id = request.path_params["watch_id"]
    if not _WATCH_ID.fullmatch(watch_id):
        raise _not_found()
    record = await api_of(request).store.watches.get(watch_id=watch_id, client=reader)
    if record is None:
        raise _not_found()
    return record


def _check_replay(record: WatchRecord, asked: tuple[object, ...]) -> None:
    """A repeated Idempotency-Key must come with the request that made the watch."""
    found = (
        record.account,
        record.job_id,
        record.webhook_url,
        list(record.events),
        record.metadata,
    )
    if asked != found:
        raise invalid("Idempotency-Key", "was already used with a different request body")


async def create_watch(request: Request) -> Response:
    """POST /v1/watches: register a watch; a repeated Idempotency-Key returns the same watch."""
    api = api_of(request)
    client_name = client_of(request)
    client = api.clients[client_name]
    key = idempotency_key(request)
    body = await parse_body(request, CreateWatch)
    if body.import_id is not None:
        return await _join_import(request, body)
    account = allowed_account(body.account, client=client, accounts=api.accounts)
    if body.webhook_url is not None:
        await check_webhook(body.webhook_url, client=client, api=api)
    events = list(body.events or ["*"])
    metadata = dict(body.metadata or {})
    try:
        record, created = await api.store.watches.create(
            client=client_name,
            account=account,
            job_id=body.job_id,
            webhook_url=body.webhook_url,
            events=events,
            metadata=metadata,
            idempotency_key=key,
            now=api.now(),
            ttl=api.watch_ttl,
            max_active=client.max_active_watches,
        )
    except WatchLimitReached as exc:
        raise watch_limit_reached(exc.limit) from None
    if not created:
        _check_replay(record, (account, body.job_id, body.webhook_url, events, metadata))
    headers = {} if created else {"Idempotent-Replayed": "true"}
    return json_response(WatchEnvelope(watch=watch_view(record)), status=201, headers=headers)


async def _join_import(request: Request, body: CreateWatch) -> Response:
    """A watch registered into an import takes the import's account, webhook_url and events; the
    job's place in the import is its identity, so the same job returns its watch again."""
    api = api_of(request)
    client_name = client_of(request)
    assert body.import_id is not None
    for field, given in (("webhook_url", body.webhook_url), ("events", body.events)):
        if given is not None:
            raise invalid(field, "comes from the import; leave it out with import_id")
    found = await api.store.imports.get(import_id=body.import_id, client=client_name)
    if found is None:
        raise import_not_found()
    if body.account is not None and body.account != found.account:
        raise invalid("account", f"must be the import's account {found.account!r} or left out")
    check_metadata(found.metadata, body.metadata or {})
    try:
        [record] = await api.store.imports.add_jobs(
            import_id=found.id,
            client=client_name,
            job_ids=[body.job_id],
            metadata=dict(body.metadata or {}),
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
    return json_response(WatchEnvelope(watch=watch_view(record)), status=201)


async def list_watches(request: Request) -> Response:
    """GET /v1/watches: the client's watches (an operator's: everyone's), newest first, by pages."""
    reader = reader_of(request)
    query = parse_query(request, ListWatchesQuery)
    page, next_cursor = await api_of(request).store.watches.page(
        client=reader, status=query.status, limit=query.limit, cursor=query.cursor
    )
    return json_response(WatchPage(watches=[watch_view(w) for w in page], next_cursor=next_cursor))


async def get_watch(request: Request) -> Response:
    """GET /v1/watches/{watch_id}."""
    watch = await _readable_watch(request, reader_of(request))
    return json_response(WatchEnvelope(watch=watch_view(watch)))


async def cancel_watch(request: Request) -> Response:
    """DELETE /v1/watches/{watch_id}: cancel; an ended watch is returned as it is."""
    client = client_of(request)
    api = api_of(request)
    watch_id = request.path_params["watch_id"]
    if not _WATCH_ID.fullmatch(watch_id):
        raise _not_found()
    record = await api.store.watches.cancel(
        client=client, watch_id=watch_id, now=api.now(), planner=api.imports
    )
    if record is None:
        raise _not_found()
    return json_response(WatchEnvelope(watch=watch_view(record)))


async def list_events(request: Request) -> Response:
    """GET /v1/watches/{watch_id}/events: every event in sequence order."""
    watch = await _readable_watch(request, reader_of(request))
    records = await api_of(request).store.watches.events(watch_id=watch.id)
    return json_response(EventList(events=[event_view(r) for r in records]))


async def list_deliveries(request: Request) -> Response:
    """GET /v1/watches/{watch_id}/deliveries: a client sees those to its webhook_url; an operator
    also sees the configured channels'."""
    reader = reader_of(request)
    watch = await _readable_watch(request, reader)
    records = await api_of(request).store.watches.deliveries(
        watch_id=watch.id, destination=None if reader is None else WEBHOOK_URL
    )
    return json_response(DeliveryList(deliveries=[delivery_view(r) for r in records]))
