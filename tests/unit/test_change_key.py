from dataclasses import replace

import pytest

from bridge.events.change_key import change_key
from bridge.events.snapshot import ItemSnapshot

ITEM = ItemSnapshot(
    id="item-1",
    external_id="sku-1",
    status="completed",
    result_url="https://cdn.example.com/1.png",
    thumbnail_url=None,
    error_code=None,
    error_message=None,
    credits_used=1,
)


def key(**overrides):
    base = {
        "account": "main",
        "job_id": "job-1",
        "event_type": "item.completed",
        "item": ITEM,
        "job_status": "processing",
    }
    return change_key(**{**base, **overrides})


def test_change_key_is_the_same_whichever_watch_saw_the_change():
    # A late watch sees the item from an empty job (its previous status differs): same change.
    assert key() == key(job_status="completed")
    assert len(key()) == 64


@pytest.mark.parametrize(
    "overrides",
    [
        {"account": "other"},
        {"job_id": "job-2"},
        {"event_type": "item.updated"},
        {"item": replace(ITEM, id="item-2")},
        {"item": replace(ITEM, result_url="https://cdn.example.com/1b.png")},
        {"item": replace(ITEM, credits_used=2)},
    ],
)
def test_change_key_differs_for_another_change(overrides):
    assert key(**overrides) != key()


def test_change_key_of_a_job_event_is_its_status():
    job = {"event_type": "job.completed", "item": None}
    assert key(**job, job_status="completed") != key(**job, job_status="failed")
    assert key(event_type="job.processing", item=None) != key(**job, job_status="processing")
