"""What a simulated job owes its webhook_url, and how the simulator signs it: pure functions."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.api.aigen_signature import expected_signature
from bridge.devtools.simulator.webhooks import changes, signature, told_of

QUEUED = {
    "status": "queued",
    "items": [{"id": "a", "status": "queued"}, {"id": "b", "status": "queued"}],
}


def _job(status: Any, *items: Any) -> dict[str, Any]:
    return {
        "status": status,
        "items": [{"id": i, "status": s} for i, s in zip("ab", items, strict=False)],
    }


@pytest.mark.parametrize(
    ("after", "owed"),
    [
        (QUEUED, []),
        (_job("processing", "processing", "queued"), ["product_photo_job.processing"]),
        (
            _job("processing", "completed", "processing"),
            ["product_photo_job.item.completed", "product_photo_job.processing"],
        ),
        (  # both items finished between two looks: each is told, in order, then the job
            _job("partially_completed", "failed", "completed"),
            [
                "product_photo_job.item.failed",
                "product_photo_job.item.completed",
                "product_photo_job.partially_completed",
            ],
        ),
        ({"items": "garbage"}, []),  # no status, no items list: nothing to tell, no crash
        (
            {"status": "brand_new", "items": [None, {"status": "completed"}]},
            [
                "product_photo_job.item.completed",
                "product_photo_job.brand_new",
            ],
        ),
    ],
)
def test_changes_tell_finished_items_then_a_new_status(after, owed):
    assert [kind for kind, _ in changes(told_of(QUEUED), after)] == owed


def test_changes_tell_each_change_once():
    done = _job("completed", "completed", "completed")
    assert changes(told_of(done), done) == []


def test_signature_is_the_one_the_bridge_expects():
    args = {
        "api_key": "aigen_test_x",
        "timestamp": "1795000000",
        "event_id": "evt_1",
        "body": b"{}",
    }
    assert signature(**args) == expected_signature(**args)
    assert signature(**{**args, "body": b"{ }"}) != expected_signature(**args)
