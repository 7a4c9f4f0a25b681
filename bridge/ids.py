"""new_id(prefix): unique ids that sort by creation time, so cursors can be plain ids."""

from __future__ import annotations

import secrets
import time


def new_id(prefix: str) -> str:
    """Return e.g. 'wat_0194c3a1b2c3d4e5f60718293a4b5c6d': prefix, 12 hex of ms time, 20 random hex."""
    return f"{prefix}_{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"
