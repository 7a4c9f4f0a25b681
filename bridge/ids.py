"""new_id(prefix): unique ids that sort by creation time, so cursors can be plain ids;
clean_request_id(value): a request id safe to echo, send and log, or None."""

from __future__ import annotations

import re
import secrets
import time

MAX_REQUEST_ID = 160  # ours and the upstream's limit for X-Request-Id
_PRINTABLE = re.compile(r"[\x20-\x7e]+")


def new_id(prefix: str) -> str:
    """Return e.g. 'wat_0194c3a1b2c3d4e5f60718293a4b5c6d': prefix, 12 hex of ms time, 20 random hex."""
    return f"{prefix}_{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


def clean_request_id(value: object) -> str | None:
    """`value` when it is 1 to 160 printable ASCII characters (str or header bytes), else None."""
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    if isinstance(value, str) and len(value) <= MAX_REQUEST_ID and _PRINTABLE.fullmatch(value):
        return value
    return None
