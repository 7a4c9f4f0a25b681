"""A claim's lease covers a row's wait in its lane and its send, up to LEASE_WAIT_S of waiting:
long enough for every send it starts, short enough that a crashed replica's rows come back in
minutes."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest

from bridge.config.models import DeliveryConfig
from bridge.delivery.deliverer import LEASE_MARGIN_S, Deliverer
from bridge.ops.metrics import Metrics


def lease_for(timeout_s: float) -> float:
    deliverer = Deliverer(
        store=cast(Any, SimpleNamespace(outbox=None)),  # the lease needs no storage
        channels=cast(Any, None),
        settings=DeliveryConfig(timeout_s=timeout_s),
        metrics=Metrics(),
        now=lambda: datetime.now(UTC),
        owner="me",
    )
    return deliverer.lease_s


@pytest.mark.parametrize(
    ("timeout_s", "turns"),
    [
        (0.5, 128),  # a full lane (512 rows, 4 at a time) fits in LEASE_WAIT_S
        (1.0, 120),  # it does not: 120 s of waiting
        (10.0, 12),  # the default: 120 s of waiting
        (300.0, 2),  # the longest timeout: still a turn of waiting and the send itself
    ],
)
def test_the_lease_covers_the_waiting_turns_up_to_lease_wait_s(timeout_s, turns):
    assert lease_for(timeout_s) == turns * timeout_s + 2 * LEASE_MARGIN_S
