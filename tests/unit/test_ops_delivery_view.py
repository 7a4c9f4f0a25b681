"""Operators see which import a delivery of an import's own event belongs to."""

from __future__ import annotations

from datetime import UTC, datetime

from bridge.api.ops_schemas import ops_delivery_view
from bridge.store.records import DeliveryRecord

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _record(owner: str) -> DeliveryRecord:
    return DeliveryRecord(
        id="dlv_1", event_id="evt_1", watch_id=owner, sequence=1, destination="webhook_url",
        status="pending", attempts=0, next_attempt_at=T0, last_status_code=None, last_error=None,
        created_at=T0, updated_at=T0, delivered_at=None,
    )  # fmt: skip


def test_an_import_event_delivery_names_its_import_not_a_watch():
    view = ops_delivery_view(_record("imp_0194c3a1b2c3d4e5f60718293a4b5c6d"))
    assert (view.watch_id, view.import_id) == (None, "imp_0194c3a1b2c3d4e5f60718293a4b5c6d")
    view = ops_delivery_view(_record("wat_0194c3a1b2c3d4e5f60718293a4b5c6d"))
    assert (view.watch_id, view.import_id) == ("wat_0194c3a1b2c3d4e5f60718293a4b5c6d", None)
