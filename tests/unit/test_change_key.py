import pytest

from bridge.events.change_key import change_key, count_changes
from bridge.events.diff import Change
from bridge.events.snapshot import ItemSnapshot

ITEM = ItemSnapshot(id="item-1", external_id="sku-1", status="completed", credits_used=1)
DONE = Change(type="item.completed", previous_status="processing", item=ITEM)


def key(**overrides):
    base = {
        "account": "main",
        "job_id": "job-1",
        "event_type": "item.completed",
        "change": DONE,
        "observed": {"item:item-1": 2},
    }
    return change_key(**{**base, **overrides})


def test_change_key_is_the_same_whichever_watch_saw_the_change():
    # A late watch sees the item from an empty job, maybe as another type: same change.
    late = Change(type="item.completed", previous_status=None, item=ITEM)
    assert key() == key(change=late)
    assert key() == key(observed={"item:item-1": 2, "item:item-1/updated": 4})
    assert len(key()) == 64


@pytest.mark.parametrize(
    "overrides",
    [
        {"account": "other"},
        {"job_id": "job-2"},
        {"change": Change("item.completed", "processing", ItemSnapshot(id="item-2", status="x"))},
        {"observed": {"item:item-1": 3}},  # the same state again, after an upstream retry
        {"change": Change("job.completed", "processing", None)},
        {"change": None, "event_type": "watch.expired"},
    ],
)
def test_change_key_differs_for_another_change(overrides):
    assert key(**overrides) != key()


def test_count_changes_counts_status_changes_and_updates_apart():
    job = Change(type="job.processing", previous_status="queued", item=None)
    updated = Change(type="item.updated", previous_status="completed", item=ITEM)
    assert count_changes({"item:item-1": 1}, [DONE, updated, job]) == {
        "item:item-1": 2,
        "item:item-1/updated": 1,
        "job": 1,
    }


def test_each_update_of_an_item_is_a_change_of_its_own():
    updated = Change(type="item.updated", previous_status="completed", item=ITEM)
    first = key(change=updated, observed={"item:item-1": 2, "item:item-1/updated": 1})
    assert first != key()
    assert first != key(change=updated, observed={"item:item-1": 2, "item:item-1/updated": 2})


def test_watch_events_are_told_once_per_job():
    ended = {"change": None, "event_type": "watch.expired"}
    assert key(**ended) == key(**ended, observed={})
