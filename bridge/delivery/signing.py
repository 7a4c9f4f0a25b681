"""Standard Webhooks signatures (standardwebhooks.com): the headers every webhook delivery carries.

Signing goes through the `standardwebhooks` package so that what we send is, by construction, what
its `Webhook.verify` (and svix's) accepts. Several secrets sign side by side for key rotation.
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
import secrets as _random
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"
_NEW_SECRET_BYTES = 24


def new_secret() -> str:
    """Return a fresh signing secret, `whsec_` followed by 24 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(_random.token_bytes(_NEW_SECRET_BYTES)).decode("ascii")


def check_secret(secret: str) -> None:
    """Raise ValueError unless `secret` is `whsec_` + base64; the message never shows it."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("webhook secret must start with 'whsec_'")
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        # standardwebhooks silently skips invalid characters; refuse them instead of signing
        # with a key that is not the one the receiver decodes.
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise ValueError("webhook secret must be 'whsec_' followed by base64") from None
    if not key:
        raise ValueError("webhook secret must not be empty")


def sign(*, msg_id: str, timestamp: datetime, body: bytes, secrets: Sequence[str]) -> str:
    """Return the `webhook-signature` value: one `v1,<base64>` per secret, space-separated."""
    if not secrets:
        raise ValueError("at least one webhook secret is needed to sign")
    when = _as_utc(timestamp)
    data = body.decode("utf-8")  # Webhook.sign takes str and signs its UTF-8 bytes
    signatures = []
    for secret in secrets:
        signatures.append(_signer(secret).sign(msg_id, when, data))
    return " ".join(signatures)


@functools.lru_cache(maxsize=1024)
def _signer(secret: str) -> Webhook:
    """The checked secret's signer, kept: decoding and checking it was a tenth of a signature."""
    check_secret(secret)
    return Webhook(secret)


def headers(
    *, msg_id: str, timestamp: datetime, body: bytes, secrets: Sequence[str]
) -> dict[str, str]:
    """Return the three Standard Webhooks headers for one delivery attempt."""
    when = _as_utc(timestamp)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(math.floor(when.timestamp())),
        "webhook-signature": sign(msg_id=msg_id, timestamp=when, body=body, secrets=secrets),
    }


def _as_utc(timestamp: datetime) -> datetime:
    # Webhook.sign relabels the zone as UTC instead of converting, so convert first.
    if timestamp.tzinfo is None or timestamp.utcoffset() is None:
        raise ValueError("webhook timestamp must be timezone-aware")
    return timestamp.astimezone(UTC)
