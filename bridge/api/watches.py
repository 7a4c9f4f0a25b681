"""Handlers for /v1/watches: register, read, list, cancel, and a watch's events and deliveries.

A client reads and cancels only its own watches (another client's is a 404) and sees only the
deliveries to its own webhook_url; an operator reads every watch and every delivery, and changes none.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response

from bridge.api.context import ApiContext, api_of, client_of, json_response, reader_of
from bridge.api.errors import ApiError, invalid
from bridge.api.parse import parse_body, parse_query
from bridge.api.schemas import (
    IDEMPOTENCY_KEY_PATTERN,
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
from bridge.config import AccountConfig, ClientConfig
from bridge.delivery.urlguard import UnsafeURL, check_url
from bridge.events.routing import WEBHOOK_URL
from bridge.store import WatchLimitReached, WatchRecord

DNS_TIMEOUT_S = 5.0
_WATCH_ID = re.compile(WATCH_ID_PATTERN)
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


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


def _idempotency_key(request: Request) -> str | None:
    values = request.headers.getlist("idempotency-key")
    if not values:
        return None
    if len(values) > 1 or not _IDEMPOTENCY_KEY.fullmatch(values[0]):
        raise invalid(
            "Idempotency-Key", "must be one header of 1 to 255 printable ASCII characters"
        )
    return values[0]


def _account(
    requested: str | None, *, client: ClientConfig, accounts: Mapping[str, AccountConfig]
) -> str:
    if requested is None:
        if len(client.accounts) != 1:
            raise invalid("account", "is required: this client may watch several accounts")
        requested = client.accounts[0]
    if requested not in client.accounts or requested not in accounts:
        raise ApiError(
            403, "account_not_allowed", f"account: this client may not watch {requested!r}"
        )
    return requested


async def _check_webhook(url: str, *, client: ClientConfig, api: ApiContext) -> None:
    if not client.webhook_secrets:
        raise invalid("webhook_url", "client has no webhook_secrets configured")
    try:
        async with asyncio.timeout(DNS_TIMEOUT_S):
            await check_url(url, allowed_hosts=api.allowed_hosts, resolve=api.resolve)
    except UnsafeURL as exc:
        raise ApiError(422, "unsafe_webhook_url", f"webhook_url: {exc}") from None
    except TimeoutError:
        raise ApiError(
            422, "unsafe_webhook_url", "webhook_url: resolving its host timed out"
        ) from None


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
    key = _idempotency_key(request)
    body = await parse_body(request, CreateWatch)
    account = _account(body.account, client=client, accounts=api.accounts)
    if body.webhook_url is not None:
        await _check_webhook(body.webhook_url, client=client, api=api)
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
        raise ApiError(
            429,
            "watch_limit_reached",
            f"this client already has {exc.limit} active watches, its max_active_watches; "
            "cancel one or wait for one to end",
        ) from None
    if not created:
        _check_replay(record, (account, body.job_id, body.webhook_url, events, metadata))
    headers = {} if created else {"Idempotent-Replayed": "true"}
    return json_response(WatchEnvelope(watch=watch_view(record)), status=201, headers=headers)


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
    record = await api.store.watches.cancel(client=client, watch_id=watch_id, now=api.now())
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
