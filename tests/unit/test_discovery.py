"""Discovery's pure decisions: which accounts list, whether a list request may start, how a round
walks the pages, which listed jobs are watched, and how a page is read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bridge.config import AccountConfig
from bridge.polling.budget import BudgetState, Limits
from bridge.polling.discovery import (
    MAX_PAGES,
    Round,
    allow_list,
    discovering_accounts,
    due_accounts,
    jobs_to_watch,
    list_share,
    next_round,
)
from bridge.polling.outcomes import JobPage
from bridge.polling.parse import parse_job_page
from bridge.store.discovery import ListDemand, discovery_key

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
A = "0b6f4a8e-2f7e-4c1a-9d7e-1c2b3a4d5e6f"
B = "1b6f4a8e-2f7e-4c1a-9d7e-1c2b3a4d5e6f"


def _account(discover: bool) -> AccountConfig:
    return AccountConfig(api_key="aigen_test_x", discover=discover)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("flags", "subscribed", "expected"),
    [
        ({"main": False, "other": False}, [], set()),
        ({"main": True, "other": False}, [], {"main"}),
        ({"main": False, "other": False}, ["other"], {"other"}),
        ({"main": True, "other": False}, ["other", "main"], {"main", "other"}),
        ({"main": False}, ["gone"], set()),  # a subscription to an account no longer configured
    ],
)
def test_discovery_accounts_are_flagged_or_subscribed(flags, subscribed, expected):
    accounts = {name: _account(flag) for name, flag in flags.items()}
    assert discovering_accounts(accounts, subscribed) == expected


@pytest.mark.parametrize(
    ("polls_per_hour", "share"), [(1, 1), (3, 1), (4, 1), (30, 7), (120, 30), (1000, 250)]
)
def test_discovery_share_is_a_quarter_of_the_hour(polls_per_hour, share):
    assert list_share(polls_per_hour) == share


def _demand(**kw: object) -> ListDemand:
    fields: dict[str, object] = {
        "account": "main",
        "budget": BudgetState(),
        "used_last_hour": 0,
        "listed_last_hour": 0,
        "last_listed_at": None,
        "in_flight": 0,
    }
    fields.update(kw)
    return ListDemand(**fields)  # type: ignore[arg-type]


LIMITS = Limits(polls_per_hour=120, max_concurrency=2)


@pytest.mark.parametrize(
    ("kwargs", "allowed"),
    [
        ({}, True),
        ({"listed_last_hour": 29}, True),
        ({"listed_last_hour": 30}, False),  # discovery's quarter of the hour is spent
        ({"used_last_hour": 119}, True),
        ({"used_last_hour": 120}, False),  # the account's hour is spent, by polls and lists
        ({"in_flight": 2}, False),  # max_concurrency
        ({"budget": BudgetState(paused_until=T0 + timedelta(seconds=5))}, False),  # a 429
        ({"budget": BudgetState(paused_until=T0)}, True),  # the pause is over
        ({"budget": BudgetState(remaining=0, reset_at=T0 + timedelta(minutes=1))}, False),
        ({"budget": BudgetState(next_slot_at=T0 + timedelta(minutes=5))}, False),  # paced
        # polls took the burst (2 steps ahead): a list takes the slot after theirs
        ({"budget": BudgetState(next_slot_at=T0 + timedelta(seconds=90))}, True),
        ({"budget": BudgetState(next_slot_at=T0 + timedelta(seconds=91))}, False),
        ({"last_listed_at": T0 - timedelta(seconds=59)}, False),  # 30 a half hour: one a minute
        ({"last_listed_at": T0 - timedelta(seconds=60)}, True),
    ],
)
def test_discovery_list_request_is_allowed_only_within_the_budget(kwargs, allowed):
    after = allow_list(_demand(**kwargs), limits=LIMITS, now=T0)
    assert (after is not None) is allowed


@pytest.mark.parametrize(
    ("ahead_s", "after_s"),
    [(None, 30), (-100, 30), (0, 30), (60, 90), (90, 120)],
)
def test_discovery_list_request_pushes_the_shared_pace_back_one_step(ahead_s, after_s):
    ahead = None if ahead_s is None else T0 + timedelta(seconds=ahead_s)
    after = allow_list(_demand(budget=BudgetState(next_slot_at=ahead)), limits=LIMITS, now=T0)
    assert after is not None and after.next_slot_at == T0 + timedelta(seconds=after_s)


def test_discovery_list_request_counts_down_the_upstreams_remaining():
    state = BudgetState(remaining=5, reset_at=T0 + timedelta(minutes=10))
    after = allow_list(_demand(budget=state), limits=LIMITS, now=T0)
    assert after is not None and after.remaining == 4


@pytest.mark.parametrize(
    ("in_round", "next_at", "expected"),
    [
        (set(), {}, ["a", "b"]),
        ({"a"}, {}, ["b"]),
        (set(), {"a": T0 + timedelta(seconds=1)}, ["b"]),
        (set(), {"a": T0, "b": T0 - timedelta(hours=1)}, ["a", "b"]),
    ],
)
def test_discovery_due_accounts(in_round, next_at, expected):
    assert due_accounts({"b", "a"}, in_round=in_round, next_at=next_at, now=T0) == expected


def _page(*jobs: tuple[str, str | None], cursor: str | None = None) -> JobPage:
    return JobPage(jobs=tuple(jobs), next_cursor=cursor)


@pytest.mark.parametrize(
    ("current", "page", "expected"),
    [
        # another page of queued jobs
        (Round("m"), _page((A, "queued"), cursor="c1"), Round("m", cursor="c1", pages=1,
                                                              cursors=frozenset({"c1"}))),
        # the last page of queued jobs: processing next
        (Round("m"), _page((A, "queued")), Round("m", ("processing",), pages=1)),
        # an empty page ends the status even with a cursor
        (Round("m"), _page(cursor="c1"), Round("m", ("processing",), pages=1)),
        # a cursor already followed ends the status
        (Round("m", cursor="c1", cursors=frozenset({"c1"})), _page((A, None), cursor="c1"),
         Round("m", ("processing",), pages=1)),
        # the last page of processing jobs: the round is done
        (Round("m", ("processing",), pages=3), _page((A, "processing")), None),
        # too many pages: done
        (Round("m", pages=MAX_PAGES - 1), _page((A, "queued"), cursor="c9"), None),
    ],
)  # fmt: skip
def test_discovery_round_walks_queued_then_processing_pages(current, page, expected):
    assert next_round(current, page) == expected


def test_discovery_round_starts_with_queued():
    assert Round("m").status == "queued"


@pytest.mark.parametrize(
    ("jobs", "expected"),
    [
        ([(A, "queued"), (B, "processing")], [A, B]),
        ([(A.upper(), "queued")], [A]),
        ([(A, None)], [A]),  # no status: the listing was filtered by one
        ([(A, "completed"), (B, "brand_new_status")], []),  # ended, or unknown: not news
        ([("not-a-uuid", "queued"), (A, "queued"), (A, "queued")], [A]),
    ],
)
def test_discovery_watches_listed_active_jobs(jobs, expected):
    assert jobs_to_watch(_page(*jobs)) == expected


def test_discovery_page_is_read_defensively():
    page = parse_job_page(
        {
            "jobs": [{"id": A.upper(), "status": "queued"}, {"id": B}],
            "next_cursor": "2026-11-28T12:00:00.000000Z",
            "request_id": "req_1",
        }
    )
    assert page == JobPage(
        jobs=((A, "queued"), (B, None)), next_cursor="2026-11-28T12:00:00.000000Z"
    )
    assert parse_job_page({"jobs": [], "next_cursor": None}).next_cursor is None


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ([], "body"),
        ({"next_cursor": None}, "jobs"),
        ({"jobs": ["x"]}, "jobs[0]"),
        ({"jobs": [{"status": "queued"}]}, "jobs[0].id"),
        ({"jobs": [], "next_cursor": 5}, "next_cursor"),
        ({"jobs": [], "next_cursor": "x" * 201}, "next_cursor"),
        ({"jobs": [], "next_cursor": "2026\ud800"}, "next_cursor"),  # no URL could carry it
    ],
)
def test_discovery_page_unusable_names_the_field(body, names):
    with pytest.raises(ValueError, match=rf"^{names.replace('[', '.').replace(']', '.')}"):
        parse_job_page(body)


def test_discovery_key_is_one_per_account_and_job_and_fits_the_column():
    assert discovery_key("main", A) == f"main/{A}"
    assert discovery_key("main", A) != discovery_key("other", A)
    long = discovery_key("m" * 250, A)
    assert len(long) <= 255 and long.startswith("sha256:")
