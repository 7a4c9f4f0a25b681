"""SQLite's record path writes times itself: exactly as UTCDateTime stores them elsewhere."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import sqlite

from bridge.store.outbox_record import _sqlite_time
from bridge.store.tables import UTCDateTime


def stored_by_the_table_type(value: datetime) -> str:
    dialect = sqlite.dialect()
    bound = UTCDateTime().process_bind_param(value, dialect)
    process = UTCDateTime().impl.dialect_impl(dialect).bind_processor(dialect)
    assert process is not None
    return process(bound)


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 12, 3, 16, 2, 11, 141493, tzinfo=UTC),
        datetime(2026, 12, 3, 16, 2, 11, tzinfo=UTC),  # no microseconds: still written
        datetime(2026, 12, 3, 18, 2, 11, 5, tzinfo=timezone(timedelta(hours=2))),  # converted
        datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=-5))),  # across midnight
    ],
)
def test_sqlite_times_are_written_as_the_table_type_writes_them(value):
    assert _sqlite_time(value) == stored_by_the_table_type(value)


def test_a_naive_time_is_refused_and_none_stays_none():
    assert _sqlite_time(None) is None
    with pytest.raises(ValueError, match="naive"):
        _sqlite_time(datetime(2026, 1, 1))  # noqa: DTZ001 - naive on purpose
