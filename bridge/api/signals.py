"""Handler for POST /upstream/{account}/signals: AI Gen Studio's own webhook, as a hint to poll now."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any, Literal

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from bridge.api.aigen_signature import SignatureProblem, verify_aigen_signature
from bridge.api.context import api_of, json_response
from bridge.api.errors import ApiError, invalid

log = logging.getLogger(__name__)


SIGNAL_HEADERS = (
    ("X-Aigen-Signature", "`v1=` and the hex HMAC-SHA256 of `{timestamp}.{event_id}.{body}`."),
    ("X-Aigen-Timestamp", "Unix seconds, in ASCII digits, within 5 minutes of now."),
    ("X-Aigen-Event-Id", "The upstream's id of this signal."),
)


class SignalAccepted(BaseModel):
    """The signal was verified; `polled_soon` says whether a watched job was moved up (or, on an
    account discovery covers, a job nobody watched was watched and made due now)."""

    status: Literal["accepted"]
    polled_soon: bool


def _job_id(body: bytes) -> str:
    try:
        data: Any = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise invalid("body", "must be JSON") from None
    candidates = []
    if isinstance(data, dict):
        inner = data.get("data")
        nested: dict[str, Any] = inner if isinstance(inner, dict) else {}
        for holder in (data, nested):
            job = holder.get("job")
            candidates += [job.get("id") if isinstance(job, dict) else None, holder.get("job_id")]
    for candidate in candidates:
        if isinstance(candidate, str) and 0 < len(candidate) <= 64:
            try:  # one spelling of a UUID, so {…} or urn:uuid: forms find the same watches
                return str(uuid.UUID(candidate))
            except ValueError:
                return candidate.lower()
    raise invalid("body", "names no job (job.id, job_id, data.job.id or data.job_id)")


async def upstream_signal(request: Request) -> Response:
    """Verify the upstream's signature with the account's key, then poll that job first."""
    api = api_of(request)
    account = api.accounts.get(request.path_params["account"])
    body = await request.body()
    try:
        # An unknown account is checked against the empty key, so its answers are those of a
        # known account with a bad signature: the endpoint does not list the configured accounts.
        event_id = verify_aigen_signature(
            api_key=account.api_key.get_secret_value() if account else "",
            headers=request.headers,
            body=body,
            now=api.now(),
        )
        if account is None:
            raise SignatureProblem("X-Aigen-Signature does not match")
    except SignatureProblem as exc:
        raise ApiError(401, "invalid_signature", str(exc)) from None
    job_id = _job_id(body)
    name = request.path_params["account"]
    moved = await api.store.jobs.signal(account=name, job_id=job_id, now=api.now())
    if not moved and api.watch_signalled is not None:
        # A job nobody watches, on an account discovery covers: watched now, and due now.
        moved = await api.watch_signalled(name, job_id)
    api.metrics.signals.labels(name, str(moved).lower()).inc()
    log.info(
        "upstream signal", extra={"job_id": job_id, "upstream_event_id": event_id, "moved": moved}
    )
    return json_response(SignalAccepted(status="accepted", polled_soon=moved), status=202)
