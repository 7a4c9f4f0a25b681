"""Handler for POST /v1/deliveries/{delivery_id}/retry: a client sends its own dead webhook delivery
again; the operator's channels and every other client's deliveries do not exist for it."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from bridge.api.context import api_of, client_of, json_response
from bridge.api.errors import ApiError
from bridge.api.schemas import DELIVERY_ID_PATTERN, DeliveryEnvelope, delivery_view
from bridge.events.routing import WEBHOOK_URL
from bridge.store import DeliveryRecord

_DELIVERY_ID = re.compile(DELIVERY_ID_PATTERN)


def _not_found() -> ApiError:
    return ApiError(404, "delivery_not_found", "no such delivery")


async def redeliver(
    request: Request, *, client: str | None, destination: str | None
) -> DeliveryRecord:
    """Put the path's dead delivery back in the queue, due now, if the caller may see it."""
    delivery_id = request.path_params["delivery_id"]
    if not _DELIVERY_ID.fullmatch(delivery_id):
        raise _not_found()
    api = api_of(request)
    outcome = await api.store.outbox.retry(
        delivery_id=delivery_id, now=api.now(), client=client, destination=destination
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
    return record


async def retry_delivery(request: Request) -> Response:
    """Put the client's dead webhook delivery back in the queue, due now; 202 with it as pending."""
    client = client_of(request)
    record = await redeliver(request, client=client, destination=WEBHOOK_URL)
    return json_response(DeliveryEnvelope(delivery=delivery_view(record)), status=202)
