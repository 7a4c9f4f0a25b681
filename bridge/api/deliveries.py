"""Handler for POST /v1/deliveries/{delivery_id}/retry: send a dead delivery again."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from bridge.api.context import api_of, client_of, json_response
from bridge.api.errors import ApiError
from bridge.api.schemas import DELIVERY_ID_PATTERN, DeliveryEnvelope, delivery_view

_DELIVERY_ID = re.compile(DELIVERY_ID_PATTERN)


def _not_found() -> ApiError:
    return ApiError(404, "delivery_not_found", "no such delivery")


async def retry_delivery(request: Request) -> Response:
    """Put the client's dead delivery back in the queue, due now; 202 with it as pending."""
    delivery_id = request.path_params["delivery_id"]
    if not _DELIVERY_ID.match(delivery_id):
        raise _not_found()
    api = api_of(request)
    outcome = await api.store.outbox.retry(
        client=client_of(request), delivery_id=delivery_id, now=api.now()
    )
    if outcome is None:
        raise _not_found()
    record, retried = outcome
    if not retried and record.status == "dead":
        raise ApiError(
            409,
            "watch_cancelled",
            "the delivery's watch was cancelled; nothing more is sent for it",
        )
    if not retried:
        raise ApiError(
            409,
            "delivery_not_dead",
            f"only a dead delivery can be retried; this one is {record.status}",
        )
    return json_response(DeliveryEnvelope(delivery=delivery_view(record)), status=202)
