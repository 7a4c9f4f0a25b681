"""verify_aigen_signature(...): check a webhook AI Gen Studio itself sent (X-Aigen-Signature).

The upstream signs `"{timestamp}.{event_id}.{raw_body}"` with HMAC-SHA256, keyed by the hex SHA-256
of the full API key, and sends `X-Aigen-Signature: v1=<hex>`, `X-Aigen-Timestamp` and
`X-Aigen-Event-Id`. It tells receivers to treat polling as the source of truth, so the bridge uses a
verified signal only to poll that job sooner, never as an event in itself.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime

TOLERANCE_S = 300  # a signature older or newer than this is refused (replays)
TIMESTAMP_DIGITS = 12  # Unix seconds for the next 30,000 years; longer is not a timestamp


class SignatureProblem(Exception):
    """The request is not a valid, fresh signal from the upstream (the message says why)."""


def expected_signature(*, api_key: str, timestamp: str, event_id: str, body: bytes) -> str:
    """The `X-Aigen-Signature` value the upstream would send for this request."""
    key = hashlib.sha256(api_key.encode()).hexdigest().encode()
    signed = f"{timestamp}.{event_id}.".encode() + body
    return "v1=" + hmac.new(key, signed, hashlib.sha256).hexdigest()


def _ascii_header(headers: Mapping[str, str], name: str, *, limit: int = 1024) -> str:
    """The header's value when it is 1..limit printable ASCII characters, else "" (as if absent)."""
    value = headers.get(name, "").strip()
    if len(value) > limit or not value.isascii() or not value.isprintable():
        return ""
    return value


def verify_aigen_signature(
    *, api_key: str, headers: Mapping[str, str], body: bytes, now: datetime
) -> str:
    """Return the signal's event id, or raise SignatureProblem."""
    signature = _ascii_header(headers, "x-aigen-signature")
    # ASCII digits only: str.isdigit() also accepts "\u00b9" (latin-1 header bytes), which int() refuses.
    timestamp = _ascii_header(headers, "x-aigen-timestamp", limit=TIMESTAMP_DIGITS)
    event_id = _ascii_header(headers, "x-aigen-event-id", limit=255)
    if not signature or not timestamp.isdigit() or not event_id:
        raise SignatureProblem(
            "X-Aigen-Signature, X-Aigen-Timestamp and X-Aigen-Event-Id are required, in ASCII"
        )
    if abs(now.timestamp() - int(timestamp)) > TOLERANCE_S:
        raise SignatureProblem("X-Aigen-Timestamp is too old or in the future")
    wanted = expected_signature(api_key=api_key, timestamp=timestamp, event_id=event_id, body=body)
    if not hmac.compare_digest(wanted.encode(), signature.encode()):
        raise SignatureProblem("X-Aigen-Signature does not match")
    return event_id
