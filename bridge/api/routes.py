"""routes(): every route the API serves, each with what /openapi.json says about it."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from bridge.api import deliveries, health, ops, ops_subscriptions, signals, watches
from bridge.api.import_routes import IMPORT_OPERATIONS
from bridge.api.openapi import Operation, serve_openapi
from bridge.api.ops_schemas import (
    AccountList,
    ChannelList,
    OpsDeliveriesQuery,
    OpsDeliveryEnvelope,
    OpsDeliveryPage,
    OpsSubscriptionsQuery,
    Retried,
    RetryDeadDeliveries,
    SlackSubscriptionPage,
)
from bridge.api.schemas import (
    CreateWatch,
    DeliveryEnvelope,
    DeliveryList,
    EventList,
    Health,
    ListWatchesQuery,
    Readiness,
    WatchEnvelope,
    WatchPage,
)

_AUTHED = (401, 413, 429, 503)  # 503 storage_unavailable: every authenticated route needs storage

OPERATIONS = (
    Operation(
        method="POST",
        path="/v1/watches",
        endpoint=watches.create_watch,
        operation_id="createWatch",
        summary="Register a watch on an upstream job",
        status=201,
        response=WatchEnvelope,
        errors=(400, *_AUTHED, 403, 404, 409, 422),
        body=CreateWatch,
        idempotent_key=True,
    ),
    Operation(
        method="GET",
        path="/v1/watches",
        endpoint=watches.list_watches,
        operation_id="listWatches",
        summary="List the client's watches (an operator: every client's), newest first",
        status=200,
        response=WatchPage,
        errors=(400, *_AUTHED),
        query=ListWatchesQuery,
    ),
    Operation(
        method="GET",
        path="/v1/watches/{watch_id}",
        endpoint=watches.get_watch,
        operation_id="getWatch",
        summary="Get one watch",
        status=200,
        response=WatchEnvelope,
        errors=(*_AUTHED, 404),
    ),
    Operation(
        method="DELETE",
        path="/v1/watches/{watch_id}",
        endpoint=watches.cancel_watch,
        operation_id="cancelWatch",
        summary="Cancel a watch; nothing more is sent for it",
        status=200,
        response=WatchEnvelope,
        errors=(*_AUTHED, 404),
    ),
    Operation(
        method="GET",
        path="/v1/watches/{watch_id}/events",
        endpoint=watches.list_events,
        operation_id="listWatchEvents",
        summary="A watch's events in sequence order",
        status=200,
        response=EventList,
        errors=(*_AUTHED, 404),
    ),
    Operation(
        method="GET",
        path="/v1/watches/{watch_id}/deliveries",
        endpoint=watches.list_deliveries,
        operation_id="listWatchDeliveries",
        summary="A watch's deliveries to its webhook_url (an operator: to every channel)",
        status=200,
        response=DeliveryList,
        errors=(*_AUTHED, 404),
    ),
    *IMPORT_OPERATIONS,
    Operation(
        method="POST",
        path="/v1/deliveries/{delivery_id}/retry",
        endpoint=deliveries.retry_delivery,
        operation_id="retryDelivery",
        summary="Send a dead delivery to the client's webhook_url again",
        status=202,
        response=DeliveryEnvelope,
        errors=(*_AUTHED, 404, 409),
    ),
    Operation(
        method="GET",
        path="/v1/ops/deliveries",
        endpoint=ops.list_deliveries,
        operation_id="opsListDeliveries",
        summary="Every delivery, newest first, by status and channel (operator token)",
        status=200,
        response=OpsDeliveryPage,
        errors=(400, *_AUTHED),
        query=OpsDeliveriesQuery,
        tag="operators",
    ),
    Operation(
        method="POST",
        path="/v1/ops/deliveries/{delivery_id}/retry",
        endpoint=ops.retry_delivery,
        operation_id="opsRetryDelivery",
        summary="Send a dead delivery to any channel again (operator token)",
        status=202,
        response=OpsDeliveryEnvelope,
        errors=(*_AUTHED, 404, 409),
        tag="operators",
    ),
    Operation(
        method="POST",
        path="/v1/ops/deliveries/retry",
        endpoint=ops.retry_dead,
        operation_id="opsRetryDeadDeliveries",
        summary="Send every dead delivery of a channel, since a time, again in order (operator token)",
        status=202,
        response=Retried,
        errors=(400, *_AUTHED),
        body=RetryDeadDeliveries,
        tag="operators",
    ),
    Operation(
        method="GET",
        path="/v1/ops/accounts",
        endpoint=ops.list_accounts,
        operation_id="opsListAccounts",
        summary="Each upstream account's poll budget as the bridge counts it (operator token)",
        status=200,
        response=AccountList,
        errors=_AUTHED,
        tag="operators",
    ),
    Operation(
        method="GET",
        path="/v1/ops/channels",
        endpoint=ops.list_channels,
        operation_id="opsListChannels",
        summary="Each configured channel's backlog and latest delivery and error (operator token)",
        status=200,
        response=ChannelList,
        errors=_AUTHED,
        tag="operators",
    ),
    Operation(
        method="GET",
        path="/v1/ops/subscriptions",
        endpoint=ops_subscriptions.list_subscriptions,
        operation_id="opsListSubscriptions",
        summary="Slack channels' subscriptions made through the Slack app, oldest first (operator token)",
        status=200,
        response=SlackSubscriptionPage,
        errors=(400, *_AUTHED),
        query=OpsSubscriptionsQuery,
        tag="operators",
    ),
    Operation(
        method="POST",
        path="/upstream/{account}/signals",
        endpoint=signals.upstream_signal,
        operation_id="upstreamSignal",
        summary="AI Gen Studio's own webhook (X-Aigen-Signature): poll that job first, now",
        status=202,
        response=signals.SignalAccepted,
        errors=(400, 401, 413, 503),
        headers=signals.SIGNAL_HEADERS,
        public=True,
        tag="upstream",
    ),
    Operation(
        method="GET",
        path="/healthz",
        endpoint=health.healthz,
        operation_id="healthz",
        summary="The process is alive",
        status=200,
        response=Health,
        public=True,
        tag="operations",
    ),
    Operation(
        method="GET",
        path="/readyz",
        endpoint=health.readyz,
        operation_id="readyz",
        summary="Storage reachable and scheduler running",
        status=200,
        response=Readiness,
        errors=(503,),
        readiness=True,
        public=True,
        tag="operations",
    ),
    Operation(
        method="GET",
        path="/metrics",
        endpoint=health.metrics,
        operation_id="metrics",
        summary="Prometheus metrics",
        status=200,
        response=None,
        media_type="text/plain",
        public=True,
        tag="operations",
    ),
    Operation(
        method="GET",
        path="/openapi.json",
        endpoint=serve_openapi,
        operation_id="openapi",
        summary="This document",
        status=200,
        response=None,
        public=True,
        tag="operations",
    ),
)


class OperationRoute(Route):
    """A Route that carries its Operation, so /openapi.json describes exactly what is served."""

    def __init__(self, operation: Operation, **kwargs: Any) -> None:
        super().__init__(
            operation.path,
            operation.endpoint,
            methods=[operation.method],
            name=operation.operation_id,
            **kwargs,
        )
        self.operation = operation


def routes() -> list[Route]:
    """Every route of the API."""
    return [OperationRoute(op) for op in OPERATIONS]
