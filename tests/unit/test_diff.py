"""diff() and carry_over(): the events of CONTRACT section 4 between two polls of one job."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.events.diff import Change, carry_over, diff
from bridge.events.snapshot import TRACKED_ITEM_FIELDS, ItemSnapshot, JobSnapshot

JOB_ID = "5f0c3d7e-0000-4000-8000-000000000001"


def item(item_id: str, status: str | None, **fields: Any) -> ItemSnapshot:
    return ItemSnapshot(id=item_id, status=status, **fields)


def job(status: str | None, *items: ItemSnapshot, **counters: int) -> JobSnapshot:
    return JobSnapshot(id=JOB_ID, status=status, items=items, **counters)


def brief(changes: list[Change]) -> list[tuple[str, str | None, str | None]]:
    return [(c.type, c.previous_status, c.item.id if c.item else None) for c in changes]


URL = "https://cdn.example.com/a.png"

DIFF_CASES = [
    # First poll: compared with an empty job.
    ("first poll, queued job", None, job("queued"), [("job.queued", None, None)]),
    ("first poll, unknown job status", None, job("paused"), [("job.paused", None, None)]),
    ("first poll, job status missing", None, job(None), []),
    (
        "first poll, items past queued",
        None,
        job(
            "processing",
            item("a", "queued"),
            item("b", "processing"),
            item("c", "completed", result_url=URL),
            item("d", "failed"),
            item("e", None, result_url=URL),
            item("f", "cancelled"),
            item("g", "archived"),
        ),
        [
            ("item.processing", None, "b"),
            ("item.completed", None, "c"),
            ("item.failed", None, "d"),
            ("item.cancelled", None, "f"),
            ("item.archived", None, "g"),
            ("job.processing", None, None),
        ],
    ),
    (
        "first poll, missing job status, completed item",
        None,
        job(None, item("a", "completed")),
        [("item.completed", None, "a")],
    ),
    # Job status.
    ("job changes", job("queued"), job("processing"), [("job.processing", "queued", None)]),
    ("job skips a status", job("queued"), job("completed"), [("job.completed", "queued", None)]),
    ("job unchanged", job("processing"), job("processing"), []),
    ("job status missing", job("processing"), job(None), []),
    ("job status never seen", job(None), job(None), []),
    ("job status seen at last", job(None), job("queued"), [("job.queued", None, None)]),
    ("job unknown status", job("processing"), job("paused"), [("job.paused", "processing", None)]),
    (
        "job counters alone",
        job("processing", total_items=2),
        job("processing", total_items=3, completed_items=1, failed_items=1, credits_used=4),
        [],
    ),
    # Item status.
    (
        "item changes",
        job("processing", item("a", "processing")),
        job("processing", item("a", "completed")),
        [("item.completed", "processing", "a")],
    ),
    (
        "item skips a status",
        job("processing", item("a", "queued")),
        job("processing", item("a", "completed")),
        [("item.completed", "queued", "a")],
    ),
    (
        "item goes back to queued",
        job("processing", item("a", "processing")),
        job("processing", item("a", "queued")),
        [("item.queued", "processing", "a")],
    ),
    (
        "new item past queued",
        job("processing", item("a", "processing")),
        job("processing", item("a", "processing"), item("b", "failed")),
        [("item.failed", None, "b")],
    ),
    (
        "new item queued",
        job("processing", item("a", "processing")),
        job("processing", item("a", "processing"), item("b", "queued")),
        [],
    ),
    (
        "item without status first seen queued",
        job("processing", item("a", None)),
        job("processing", item("a", "queued")),
        [],
    ),
    (
        "item without status first seen processing",
        job("processing", item("a", None)),
        job("processing", item("a", "processing")),
        [("item.processing", None, "a")],
    ),
    (
        "item status missing",
        job("processing", item("a", "processing")),
        job("processing", item("a", None)),
        [],
    ),
    (
        "item unknown status",
        job("processing", item("a", "processing")),
        job("processing", item("a", "archived")),
        [("item.archived", "processing", "a")],
    ),
    # Tracked fields.
    *[
        (
            f"item {name} changes",
            job("processing", item("a", "completed")),
            job("processing", item("a", "completed", **{name: value})),
            [("item.updated", "completed", "a")],
        )
        for name, value in [
            ("result_url", URL),
            ("thumbnail_url", URL),
            ("error_code", "nsfw"),
            ("error_message", "rejected"),
            ("credits_used", 1),
        ]
    ],
    (
        "item field cleared",
        job("processing", item("a", "completed", result_url=URL)),
        job("processing", item("a", "completed")),
        [("item.updated", "completed", "a")],
    ),
    (
        "several fields change at once",
        job("processing", item("a", "completed")),
        job("processing", item("a", "completed", result_url=URL, thumbnail_url=URL)),
        [("item.updated", "completed", "a")],
    ),
    (
        "status and field change together",
        job("processing", item("a", "processing")),
        job("processing", item("a", "completed", result_url=URL, credits_used=1)),
        [("item.completed", "processing", "a")],
    ),
    (
        "field changes while status missing",
        job("processing", item("a", "completed")),
        job("processing", item("a", None, result_url=URL)),
        [("item.updated", "completed", "a")],
    ),
    (
        "queued item field changes",
        job("queued", item("a", "queued")),
        job("queued", item("a", "queued", credits_used=0)),
        [("item.updated", "queued", "a")],
    ),
    (
        "untracked item field",
        job("processing", item("a", "completed", external_id="sku-1")),
        job("processing", item("a", "completed", external_id="sku-2")),
        [],
    ),
    # Vanished items and ordering.
    (
        "item vanishes",
        job("processing", item("a", "processing"), item("b", "completed")),
        job("processing", item("b", "completed")),
        [],
    ),
    (
        "upstream item order, job last",
        job("queued", item("a", "queued"), item("b", "queued"), item("c", "queued")),
        job(
            "processing",
            item("c", "failed"),
            item("a", "processing"),
            item("b", "queued", result_url=URL),
        ),
        [
            ("item.failed", "queued", "c"),
            ("item.processing", "queued", "a"),
            ("item.updated", "queued", "b"),
            ("job.processing", "queued", None),
        ],
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [pytest.param(old, new, expected, id=name) for name, old, new, expected in DIFF_CASES],
)
def test_diff_table(
    old: JobSnapshot | None, new: JobSnapshot, expected: list[tuple[str, str | None, str | None]]
) -> None:
    assert brief(diff(old, new)) == expected
    assert brief(diff(old, carry_over(old, new))) == expected


def test_diff_item_change_carries_the_item_as_seen_now_with_its_kept_status() -> None:
    old = job("processing", item("a", "completed", external_id="sku-1"))
    new = job("processing", item("a", None, external_id="sku-1", result_url=URL))

    assert diff(old, new) == [
        Change(
            type="item.updated",
            previous_status="completed",
            item=item("a", "completed", external_id="sku-1", result_url=URL),
        )
    ]


def test_diff_job_change_has_no_item() -> None:
    assert diff(job("queued"), job("processing")) == [
        Change(type="job.processing", previous_status="queued", item=None)
    ]


CARRY_CASES = [
    (
        "first poll is the new snapshot",
        None,
        job(None, item("a", None)),
        job(None, item("a", None)),
    ),
    ("new job status wins", job("queued"), job("processing"), job("processing")),
    ("missing job status kept", job("processing"), job(None), job("processing")),
    (
        "counters come from the new poll",
        job("processing", total_items=2),
        job(None, total_items=2, completed_items=1),
        job("processing", total_items=2, completed_items=1),
    ),
    (
        "missing item status kept, other fields new",
        job("processing", item("a", "completed")),
        job("processing", item("a", None, result_url=URL)),
        job("processing", item("a", "completed", result_url=URL)),
    ),
    (
        "item never seen with a status stays without one",
        job("processing"),
        job("processing", item("a", None)),
        job("processing", item("a", None)),
    ),
    (
        "vanished items appended in their old order",
        job("processing", item("a", "failed"), item("b", "queued"), item("c", "completed")),
        job("processing", item("d", "queued"), item("b", "processing")),
        job(
            "processing",
            item("d", "queued"),
            item("b", "processing"),
            item("a", "failed"),
            item("c", "completed"),
        ),
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [pytest.param(old, new, expected, id=name) for name, old, new, expected in CARRY_CASES],
)
def test_carry_over_table(old: JobSnapshot | None, new: JobSnapshot, expected: JobSnapshot) -> None:
    assert carry_over(old, new) == expected


# Properties ----------------------------------------------------------------------------------

JOB_STATUSES = [
    "queued",
    "processing",
    "completed",
    "partially_completed",
    "failed",
    "cancelled",
    "paused",
    None,
]
ITEM_STATUSES = ["queued", "processing", "completed", "failed", "cancelled", "archived", None]
ITEM_IDS = ["i1", "i2", "i3", "i4"]
FIELD_VALUES: dict[str, list[Any]] = {
    "result_url": [None, "https://cdn.example.com/1.png", "https://cdn.example.com/2.png"],
    "thumbnail_url": [None, "https://cdn.example.com/1t.png"],
    "error_code": [None, "nsfw", "timeout"],
    "error_message": [None, "rejected"],
    "credits_used": [None, 0, 1],
}
PROPS = settings(max_examples=200, deadline=None)


@st.composite
def items(draw: st.DrawFn, item_id: str) -> ItemSnapshot:
    fields = {name: draw(st.sampled_from(pool)) for name, pool in FIELD_VALUES.items()}
    return ItemSnapshot(
        id=item_id,
        status=draw(st.sampled_from(ITEM_STATUSES)),
        external_id=draw(st.sampled_from([None, "sku-1", "sku-2"])),
        **fields,
    )


@st.composite
def jobs(draw: st.DrawFn) -> JobSnapshot:
    ids = draw(st.lists(st.sampled_from(ITEM_IDS), unique=True, max_size=len(ITEM_IDS)))
    counter = st.integers(min_value=0, max_value=3)
    return JobSnapshot(
        id=JOB_ID,
        status=draw(st.sampled_from(JOB_STATUSES)),
        total_items=draw(counter),
        completed_items=draw(counter),
        failed_items=draw(counter),
        credits_used=draw(counter),
        items=tuple(draw(items(item_id)) for item_id in ids),
    )


@st.composite
def evolved(draw: st.DrawFn, old: JobSnapshot) -> JobSnapshot:
    """A later poll of `old`: items kept, touched, dropped, added and reordered."""
    kept: list[ItemSnapshot] = []
    for before in old.items:
        action = draw(st.sampled_from(["same", "status", "field", "untracked", "drop"]))
        if action == "status":
            kept.append(replace(before, status=draw(st.sampled_from(ITEM_STATUSES))))
        elif action == "field":
            name = draw(st.sampled_from(TRACKED_ITEM_FIELDS))
            kept.append(replace(before, **{name: draw(st.sampled_from(FIELD_VALUES[name]))}))
        elif action == "untracked":
            kept.append(replace(before, external_id="sku-9"))
        elif action == "same":
            kept.append(before)
    free = [i for i in ITEM_IDS if i not in {item.id for item in old.items}]
    added = draw(st.lists(st.sampled_from(free), unique=True)) if free else []
    new_items = draw(st.permutations(kept + [draw(items(item_id)) for item_id in added]))
    status = draw(st.sampled_from([old.status, *JOB_STATUSES]))
    return replace(old, status=status, items=tuple(new_items))


@st.composite
def pairs(draw: st.DrawFn) -> tuple[JobSnapshot | None, JobSnapshot]:
    """Two polls of one job: a first poll, two unrelated polls, or a poll and a later one."""
    kind = draw(st.sampled_from(["first", "independent", "evolved"]))
    if kind == "first":
        return None, draw(jobs())
    old = draw(jobs())
    return old, draw(jobs() if kind == "independent" else evolved(old))


def apply(old: JobSnapshot | None, changes: list[Change]) -> JobSnapshot:
    """Replay `changes` on what the bridge stored before, as a consumer of the events would."""
    state = carry_over(None, old) if old is not None else JobSnapshot.empty(JOB_ID)
    by_id = {i.id: i for i in state.items}
    status = state.status
    for change in changes:
        if change.item is None:
            status = change.type.removeprefix("job.")
        else:
            by_id[change.item.id] = change.item
    return replace(state, status=status, items=tuple(by_id.values()))


def projection(snapshot: JobSnapshot) -> tuple[str | None, dict[str, tuple[Any, ...]]]:
    # An item without a status has not left `queued` as far as anyone was told.
    return snapshot.status, {
        i.id: (i.status or "queued", *(getattr(i, n) for n in TRACKED_ITEM_FIELDS))
        for i in snapshot.items
    }


def untracked_changed(snapshot: JobSnapshot) -> JobSnapshot:
    return replace(
        snapshot,
        total_items=snapshot.total_items + 1,
        completed_items=snapshot.completed_items + 2,
        failed_items=snapshot.failed_items + 3,
        credits_used=snapshot.credits_used + 4,
        items=tuple(replace(i, external_id=f"{i.external_id}-x") for i in snapshot.items),
    )


@PROPS
@given(jobs())
def test_diff_identical_snapshots_give_no_change(snapshot: JobSnapshot) -> None:
    assert diff(snapshot, snapshot) == []
    assert diff(snapshot, carry_over(snapshot, snapshot)) == []


@PROPS
@given(pairs())
def test_diff_replayed_changes_rebuild_the_carried_over_snapshot(
    pair: tuple[JobSnapshot | None, JobSnapshot],
) -> None:
    old, new = pair
    replayed = projection(apply(old, diff(old, new)))
    expected = projection(carry_over(old, new))

    assert replayed[0] == expected[0]
    old_ids = {i.id for i in old.items} if old else set()
    for item_id, seen in expected[1].items():
        if item_id in replayed[1]:
            assert replayed[1][item_id] == seen
        else:
            # Only an item first seen without news (queued or no status) may go unannounced.
            assert item_id not in old_ids
            assert seen[0] == "queued"
    assert set(replayed[1]) <= set(expected[1])


@PROPS
@given(pairs())
def test_diff_equals_diff_against_carried_over_snapshot(
    pair: tuple[JobSnapshot | None, JobSnapshot],
) -> None:
    old, new = pair
    assert diff(old, new) == diff(old, carry_over(old, new))


@PROPS
@given(pairs())
def test_diff_untracked_fields_never_change_the_events(
    pair: tuple[JobSnapshot | None, JobSnapshot],
) -> None:
    old, new = pair
    assert brief(diff(old, untracked_changed(new))) == brief(diff(old, new))
    if old is not None:
        assert diff(old, untracked_changed(old)) == []


@PROPS
@given(pairs())
def test_diff_one_change_per_item_and_job_change_last(
    pair: tuple[JobSnapshot | None, JobSnapshot],
) -> None:
    old, new = pair
    changes = diff(old, new)
    job_changes = [c for c in changes if c.item is None]
    item_ids = [c.item.id for c in changes if c.item is not None]

    assert len(job_changes) <= 1
    assert all(c.type.startswith("job.") for c in job_changes)
    if job_changes:
        assert changes[-1] is job_changes[0]
    assert len(item_ids) == len(set(item_ids))
    new_order = [i.id for i in new.items]
    assert item_ids == [i for i in new_order if i in item_ids]
    assert all(c.type.startswith("item.") and c.type != "item.None" for c in changes if c.item)
    assert all(c.type != "job.None" for c in job_changes)


@PROPS
@given(pairs())
def test_carry_over_never_loses_a_status_or_an_item(
    pair: tuple[JobSnapshot | None, JobSnapshot],
) -> None:
    old, new = pair
    kept = carry_over(old, new)

    assert [i.id for i in kept.items][: len(new.items)] == [i.id for i in new.items]
    if old is None:
        assert kept == new
        return
    assert kept.status == (new.status if new.status is not None else old.status)
    by_id = {i.id: i for i in kept.items}
    for before in old.items:
        assert by_id[before.id].status is not None or before.status is None
    assert carry_over(old, kept) == kept
