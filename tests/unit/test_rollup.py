"""The pure roll-up: fold/settle/close/cancel/stall/rate/eta, and folding always equals a recount."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.events.rollup import (
    Contribution,
    Tally,
    cancel,
    close,
    contribution,
    eta,
    fold,
    rate_per_hour,
    recount,
    settle,
    stall,
)
from bridge.events.snapshot import ItemSnapshot, JobSnapshot

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
STALL = timedelta(minutes=30)
FINAL_EVENTS = {f"import.{s}" for s in ("completed", "partially_completed", "failed", "cancelled")}


def _job(status: str | None, *items: str | None, credits: int = 0, total: int = 0) -> JobSnapshot:
    return JobSnapshot(
        id="job",
        status=status,
        total_items=total,
        credits_used=credits,
        items=tuple(ItemSnapshot(id=f"i{n}", status=s) for n, s in enumerate(items)),
    )


def _counts(tally: Tally) -> dict[str, object]:
    return {
        "jobs": tally.jobs,
        "images": {
            "total": tally.images_total,
            "completed": tally.images_completed,
            "failed": tally.images_failed,
        },
        "credits_used": tally.credits_used,
        "jobs_seen": tally.jobs_seen,
    }


# --- contribution -----------------------------------------------------------------------------


def test_contribution_counts_images_and_maps_watch_status_to_a_job_state():
    job = _job("processing", "completed", "failed", "cancelled", "processing", None, credits=3)
    c = contribution("active", job)
    assert (c.state, c.total, c.completed, c.failed, c.credits, c.started) == (
        "active",
        5,
        1,
        2,
        3,
        True,
    )
    assert c.finished == 3
    final = _job("partially_completed", "completed", "failed")
    assert contribution("completed", final).state == "partially_completed"
    assert contribution("completed", _job("processing")).state == "completed"
    assert contribution("expired", job).state == "failed"
    assert contribution("failed", job).state == "failed"
    assert contribution("cancelled", job).state == "cancelled"
    assert contribution("active", _job("queued", total=4)).total == 4  # items not listed yet
    assert not contribution("active", _job("queued", "queued", "cancelled")).started


def test_contribution_without_a_snapshot():
    assert contribution("active", None) == Contribution()
    # An ended job's images will never be known: it no longer holds progress back.
    assert contribution("expired", None) == Contribution(state="failed", seen=True)
    assert contribution("cancelled", None) == Contribution(state="cancelled", seen=True)
    assert contribution("completed", None) == Contribution()  # cannot happen: stays active


def test_progress_waits_until_every_job_of_the_import_was_polled():
    t = fold(Tally(), None, Contribution(), now=T0)  # added, never polled
    polled = contribution("active", None)
    t = fold(t, None, Contribution(), now=T0)
    done = Contribution(total=10, completed=10, started=True, seen=True)
    t = fold(t, polled, done, now=T0)
    t, types = settle(t, now=T0, finished_before=0)
    assert types == ["import.started"]  # 10 of 10 known images, but one job is not yet known
    assert t.progress_tenths == 0
    t = fold(t, polled, Contribution(total=10, started=True, seen=True), now=T0)
    t, types = settle(t, now=T0, finished_before=10)
    assert types == ["import.progress"] and t.progress_tenths == 5


def test_contribution_round_trips_through_its_stored_form():
    c = Contribution("completed", 3, 2, 1, 7, True, True)
    assert Contribution.from_dict(c.to_dict()) == c
    assert Contribution.from_dict(None) is None


# --- fold and settle ----------------------------------------------------------------------------


def test_fold_adds_only_the_difference_and_moves_the_job_between_states():
    t = fold(Tally(), None, Contribution(), now=T0)
    assert t.jobs["total"] == 1 and t.jobs["active"] == 1
    first = Contribution("active", 4, 1, 0, 1, True, True)
    t = fold(t, Contribution(), first, now=T0)
    t = fold(t, first, Contribution("partially_completed", 4, 3, 1, 3, True, True), now=T0)
    assert t.jobs == {
        "total": 1,
        "active": 0,
        "completed": 0,
        "partially_completed": 1,
        "failed": 0,
        "cancelled": 0,
    }
    assert (t.images_total, t.images_completed, t.images_failed, t.credits_used) == (4, 3, 1, 3)
    assert t.last_finished_at == T0 and sum(t.finished_by_minute.values()) == 4


def test_an_untimed_fold_counts_images_but_not_towards_the_rate():
    done = Contribution("active", 3, 3, 0, 3, True, True)
    t = fold(Tally(), None, done, now=T0, timed=False)
    assert t.images_completed == 3
    assert t.finished_by_minute == {} and t.last_finished_at is None


def test_settle_starts_progresses_and_ends_once():
    t = fold(Tally(closed=True), None, Contribution(), now=T0)
    t, out = settle(t, now=T0, finished_before=0)
    assert out == [] and t.status == "open"
    started = Contribution("active", 10, 0, 0, 0, True, True)
    t, out = settle(fold(t, Contribution(), started, now=T0), now=T0, finished_before=0)
    assert out == ["import.started"] and t.status == "running" and t.started_at == T0
    half = Contribution("active", 10, 5, 0, 5, True, True)
    t, out = settle(fold(t, started, half, now=T0), now=T0, finished_before=0)
    assert out == ["import.progress"] and t.progress_tenths == 5  # one event for five tenths
    done = Contribution("completed", 10, 10, 0, 10, True, True)
    t, out = settle(fold(t, half, done, now=T0), now=T0, finished_before=5)
    assert out == ["import.progress", "import.completed"]
    assert t.progress_tenths == 9 and t.status == "completed" and t.ended_at == T0
    assert settle(t, now=T0, finished_before=10) == (t, [])


def test_settle_ends_failed_or_partially_and_a_job_that_finished_at_once_starts_it():
    t = fold(Tally(closed=True), None, Contribution(), now=T0)
    failed = Contribution(
        "failed", 2, 0, 2, 0, False, True
    )  # cancelled items only: never "started"
    t, out = settle(fold(t, Contribution(), failed, now=T0), now=T0, finished_before=0)
    assert out == ["import.started", "import.progress", "import.failed"]
    t = fold(Tally(closed=True), None, Contribution(), now=T0)
    part = Contribution("partially_completed", 2, 1, 1, 1, True, True)
    t, out = settle(fold(t, Contribution(), part, now=T0), now=T0, finished_before=0)
    assert out[-1] == "import.partially_completed"


def test_an_open_import_never_ends_and_close_ends_one_whose_jobs_have():
    t = fold(Tally(), None, Contribution(), now=T0)
    done = Contribution("completed", 1, 1, 0, 1, True, True)
    t, out = settle(fold(t, Contribution(), done, now=T0), now=T0, finished_before=0)
    assert out == ["import.started", "import.progress"] and t.status == "running"
    later = T0 + timedelta(hours=1)
    t, out = close(t, now=later)
    assert out == ["import.completed"] and t.ended_at == later and t.closed
    assert close(t, now=later) == (t, [])


def test_close_with_active_jobs_waits_and_closing_twice_is_quiet():
    t = fold(Tally(), None, Contribution(), now=T0)
    t, out = close(t, now=T0)
    assert out == [] and t.closed and t.status == "open"
    assert close(t, now=T0) == (t, [])


def test_cancel_ends_any_import_not_ended_and_clears_a_stall():
    t, out = cancel(replace(Tally(status="running", stalled=True)), now=T0)
    assert out == ["import.cancelled"] and t.status == "cancelled" and not t.stalled and t.closed
    assert cancel(t, now=T0) == (t, [])
    done = Tally(status="completed")
    assert cancel(done, now=T0) == (done, [])


def test_stall_needs_a_running_import_with_active_jobs_and_a_quiet_while():
    running = Tally(status="running", started_at=T0, jobs={**Tally().jobs, "active": 1})
    assert stall(running, now=T0 + STALL - timedelta(seconds=1), stall_after=STALL)[1] == []
    stalled, out = stall(running, now=T0 + STALL, stall_after=STALL)
    assert out == ["import.stalled"] and stalled.stalled
    assert stall(stalled, now=T0 + 2 * STALL, stall_after=STALL) == (stalled, [])
    idle = replace(running, jobs=Tally().jobs)
    assert stall(idle, now=T0 + STALL, stall_after=STALL)[1] == []
    assert stall(Tally(), now=T0 + STALL, stall_after=STALL)[1] == []  # open: nothing started
    recent = replace(running, last_finished_at=T0 + timedelta(minutes=20))
    assert stall(recent, now=T0 + STALL, stall_after=STALL)[1] == []


def test_a_finished_image_resumes_a_stalled_import():
    t = fold(Tally(), None, Contribution(), now=T0)
    going = Contribution("active", 4, 0, 0, 0, True, True)
    t, _ = settle(fold(t, Contribution(), going, now=T0), now=T0, finished_before=0)
    t, out = stall(t, now=T0 + STALL, stall_after=STALL)
    assert out == ["import.stalled"]
    later = T0 + STALL + timedelta(minutes=1)
    still = replace(going, credits=1)  # a change, but no image finished
    t, out = settle(fold(t, going, still, now=later), now=later, finished_before=0)
    assert out == [] and t.stalled
    one = replace(still, completed=1)
    t, out = settle(fold(t, still, one, now=later), now=later, finished_before=0)
    assert out == ["import.resumed", "import.progress"] and not t.stalled


# --- rate and eta -------------------------------------------------------------------------------


def test_rate_and_eta_before_anything_finished():
    assert rate_per_hour(Tally(), now=T0) is None
    started = Tally(status="running", started_at=T0)
    assert rate_per_hour(started, now=T0 + timedelta(minutes=10)) == 0.0
    assert eta(started, now=T0 + timedelta(minutes=10)) is None


def test_rate_over_a_young_import_is_since_its_start_but_at_least_a_minute():
    t = Tally(status="running", started_at=T0)
    t = fold(t, Contribution(), Contribution("active", 10, 2, 0, 2, True, True), now=T0)
    assert rate_per_hour(t, now=T0 + timedelta(seconds=5)) == 120.0  # 2 per minute, not per 5 s
    at = T0 + timedelta(minutes=30)
    assert rate_per_hour(t, now=at) == 4.0
    assert eta(t, now=at) == at + timedelta(hours=2)  # 8 pending at 4 an hour


def test_rate_looks_back_one_hour_only():
    t = Tally(status="running", started_at=T0)
    one = Contribution("active", 10, 1, 0, 0, True, True)
    t = fold(t, Contribution(), one, now=T0)
    later = T0 + timedelta(hours=2)
    two = replace(one, completed=2)
    t = fold(t, one, two, now=later)
    assert list(t.finished_by_minute.values()) == [1]  # the old minute was dropped
    assert rate_per_hour(t, now=later) == 1.0
    assert rate_per_hour(t, now=later + timedelta(hours=1, minutes=1)) == 0.0
    assert eta(t, now=later + timedelta(hours=1, minutes=1)) is None  # a rate of zero


def test_eta_is_now_with_nothing_pending_and_none_once_ended():
    t = Tally(status="running", started_at=T0)
    t = fold(t, Contribution(), Contribution("active", 1, 1, 0, 1, True, True), now=T0)
    assert eta(t, now=T0) == T0
    assert eta(replace(t, status="completed"), now=T0) is None


# --- properties ---------------------------------------------------------------------------------

ITEM_STATES = st.sampled_from(
    [None, "queued", "processing", "completed", "failed", "cancelled", "paused_by_ops"]
)
JOB_STATUSES = st.sampled_from(
    [None, "queued", "processing", "completed", "partially_completed", "failed", "cancelled"]
)
WATCH_STATUSES = st.sampled_from(["active"] * 4 + ["completed", "failed", "expired", "cancelled"])


@st.composite
def snapshots(draw: st.DrawFn) -> JobSnapshot:
    items = draw(st.lists(ITEM_STATES, max_size=6))
    return _job(
        draw(JOB_STATUSES),
        *items,
        credits=draw(st.integers(0, 12)),
        total=draw(st.integers(0, 8)),
    )


JOBS = 4
OPS = st.one_of(
    st.tuples(st.just("add"), st.integers(0, JOBS - 1), st.booleans()),
    st.tuples(st.just("poll"), st.integers(0, JOBS - 1), WATCH_STATUSES, snapshots()),
    st.tuples(st.just("close")),
    st.tuples(st.just("cancel")),
    st.tuples(st.just("wait"), st.integers(1, 3600)),
)


@dataclass
class Model:
    """An import driven the way the store drives it, remembering each job's contribution."""

    tally: Tally = field(default_factory=Tally)
    counted: dict[int, Contribution] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    now: datetime = T0

    def apply(self, op: tuple[object, ...]) -> None:
        kind = op[0]
        if kind == "wait":
            assert isinstance(op[1], int)
            self.now += timedelta(seconds=op[1])
            self._tell(*stall(self.tally, now=self.now, stall_after=STALL))
        elif kind == "add" and not self.tally.closed and op[1] not in self.counted:
            job = op[1]
            assert isinstance(job, int)
            known = Contribution("active", 2, 1, 0, 1, True, True) if op[2] else Contribution()
            self.counted[job] = known
            t = fold(self.tally, None, known, now=self.now, timed=False)
            self._tell(*settle(t, now=self.now, finished_before=t.images_finished))
        elif kind == "poll" and self.counted.get(op[1], Contribution("x")).state == "active":
            job, status, snapshot = op[1], op[2], op[3]
            assert isinstance(job, int) and isinstance(status, str)
            assert isinstance(snapshot, JobSnapshot)
            new = contribution(status, snapshot)
            before = self.tally.images_finished
            t = fold(self.tally, self.counted[job], new, now=self.now)
            self.counted[job] = new
            self._tell(*settle(t, now=self.now, finished_before=before))
        elif kind == "close":
            self._tell(*close(self.tally, now=self.now))
        elif kind == "cancel":
            t = self.tally
            for job, old in self.counted.items():
                if old.state == "active":
                    self.counted[job] = replace(old, state="cancelled")
                    t = fold(t, old, self.counted[job], now=self.now)
            self.tally = t
            self._tell(*cancel(t, now=self.now))

    def _tell(self, tally: Tally, events: list[str]) -> None:
        self.tally = tally
        self.events += events


def check_events(events: list[str], tally: Tally) -> None:
    """The import event invariants of CONTRACT section 7."""
    assert events.count("import.progress") <= 9
    finals = [e for e in events if e in FINAL_EVENTS]
    assert len(finals) == (1 if tally.ended else 0)
    if finals:
        assert events[-1] == finals[0] == f"import.{tally.status}"
    if "import.progress" in events:
        assert "import.started" in events
        assert events.index("import.started") < events.index("import.progress")
    assert events.count("import.started") <= 1
    turns = [e for e in events if e in ("import.stalled", "import.resumed")]
    assert turns == ["import.stalled", "import.resumed"] * (len(turns) // 2) + (
        ["import.stalled"] if len(turns) % 2 else []
    )
    if turns:
        assert events.index("import.started") < events.index("import.stalled")


@settings(max_examples=300, deadline=None)
@given(st.lists(OPS, max_size=40))
def test_folding_any_sequence_equals_a_recount_and_events_keep_their_rules(ops):
    model = Model()
    for op in ops:
        model.apply(op)
        assert _counts(model.tally) == recount(model.counted.values())
        assert 0 <= model.tally.progress_tenths <= 9
    check_events(model.events, model.tally)
    if model.tally.closed and model.counted and not model.tally.ended:
        assert model.tally.jobs["active"] > 0  # a closed import ends when its jobs have


@settings(max_examples=150, deadline=None)
@given(st.lists(OPS, max_size=40))
def test_closing_and_ending_every_job_always_ends_the_import_once(ops):
    model = Model()
    for op in [*ops, ("add", 0, False), ("close",)]:
        model.apply(op)
    for job, old in list(model.counted.items()):
        if old.state == "active":
            model.apply(("poll", job, "completed", _job("completed", "completed")))
    check_events(model.events, model.tally)
    # Closed before any job came (an empty import) is the one way to stay unended.
    assert model.tally.ended or not model.counted
    assert _counts(model.tally) == recount(model.counted.values())


def test_an_import_whose_jobs_were_all_cancelled_ends_cancelled():
    t = fold(Tally(closed=True), None, Contribution(), now=T0)
    t = fold(t, Contribution(), Contribution().cancelled(), now=T0)
    t, out = settle(t, now=T0, finished_before=0)
    assert out == ["import.cancelled"] and t.status == "cancelled"
