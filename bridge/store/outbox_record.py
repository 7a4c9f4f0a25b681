"""write_attempts(conn, results, ...): a batch of delivery attempts recorded, each delivery moved on.

On PostgreSQL the batch goes as arrays, one parameter per column, unnested by the server: one
statement whatever the batch's size, run on its own (`Outbox._write_attempts`), where an
executemany bound every row's values one by one (a quarter of a delivery drain's CPU). SQLite,
whose statements run in the same process anyway, takes the rows as an executemany of tuples.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import DateTime, Float, Integer, String, Text, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

if TYPE_CHECKING:
    from bridge.store.outbox import AttemptResult

EXCERPT_CHARS = 1_000
ERROR_CHARS = 1_000

_WHEN = ARRAY(DateTime(timezone=True))

# SQLite: moves a delivery on unless its lease passed to another owner or it is no longer
# pending (a watch cancelled meanwhile stays dead); one row per tuple (`_rows`).
_STILL_OURS_SQLITE = (
    "UPDATE deliveries SET status = ?, attempts = attempts + ?, next_attempt_at = ?,"
    " last_status_code = ?, last_error = ?, delivered_at = ?, lease_owner = NULL,"
    " lease_expires_at = NULL, updated_at = ?"
    " WHERE id = ? AND lease_owner = ? AND status = 'pending'"
)
_INSERT_ATTEMPTS_SQLITE = (
    "INSERT INTO delivery_attempts"
    " (delivery_id, attempted_at, status_code, error, duration_ms, response_excerpt)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)


# One statement, run on its own (autocommit: one round trip, where BEGIN, two statements and
# COMMIT were four, each waking the server). The rows are locked in id order, each before it is
# updated (the order cancel_watch locks them in: two writers never deadlock), and moved on unless
# the lease passed to another owner or the delivery is no longer pending (a watch cancelled
# meanwhile stays dead);
# the counted attempts are inserted whatever became of the lease (they happened). A data-modifying
# WITH runs to completion whether or not the INSERT reads it.
_RECORD_UNNESTED = text(
    "WITH locked AS ("
    "  SELECT id, status, lease_owner FROM deliveries WHERE id = ANY(:ids) ORDER BY id FOR UPDATE"
    "), moved AS ("
    " UPDATE deliveries AS d SET"
    "  status = u.status,"
    "  attempts = d.attempts + u.counted,"
    "  next_attempt_at = u.next_attempt_at,"
    "  last_status_code = u.status_code,"
    "  last_error = u.error,"
    "  delivered_at = u.delivered_at,"
    "  lease_owner = NULL,"
    "  lease_expires_at = NULL,"
    "  updated_at = :now"
    " FROM locked, unnest(:ids, :statuses, :counted, :next_at, :status_codes, :errors, :delivered)"
    "  AS u(id, status, counted, next_attempt_at, status_code, error, delivered_at)"
    " WHERE d.id = locked.id AND u.id = locked.id"
    "  AND locked.lease_owner = :owner AND locked.status = 'pending'"
    " RETURNING d.id"
    ")"
    " INSERT INTO delivery_attempts"
    " (delivery_id, attempted_at, status_code, error, duration_ms, response_excerpt)"
    " SELECT * FROM unnest("
    "  :a_ids, :a_attempted_at, :a_status_codes, :a_errors, :a_durations, :a_excerpts)"
).bindparams(
    bindparam("ids", type_=ARRAY(String)),
    bindparam("statuses", type_=ARRAY(String)),
    bindparam("counted", type_=ARRAY(Integer)),
    bindparam("next_at", type_=_WHEN),
    bindparam("status_codes", type_=ARRAY(Integer)),
    bindparam("errors", type_=ARRAY(Text)),
    bindparam("delivered", type_=_WHEN),
    bindparam("now", type_=DateTime(timezone=True)),
    bindparam("owner", type_=String),
    bindparam("a_ids", type_=ARRAY(String)),
    bindparam("a_attempted_at", type_=_WHEN),
    bindparam("a_status_codes", type_=ARRAY(Integer)),
    bindparam("a_errors", type_=ARRAY(Text)),
    bindparam("a_durations", type_=ARRAY(Float)),
    bindparam("a_excerpts", type_=ARRAY(Text)),
)


def _cap(text: str | None, limit: int) -> str | None:
    """The text cut to `limit`, a NUL (which PostgreSQL's text cannot hold: a receiver's body with
    one failed the whole batch's write, and every delivery in it was sent again) as U+FFFD."""
    return None if text is None else text[:limit].replace("\x00", "\ufffd")


async def write_attempts(
    conn: AsyncConnection, results: Sequence[AttemptResult], *, now: datetime, owner: str
) -> None:
    """Insert the counted attempts and move each delivery on (see `Outbox.record_attempts`);
    `results` in delivery id order."""
    if conn.dialect.name == "postgresql":
        await _unnested(conn, results, now=now, owner=owner)
    else:
        await _rows(conn, results, now=now, owner=owner)


async def _unnested(
    conn: AsyncConnection, results: Sequence[AttemptResult], *, now: datetime, owner: str
) -> None:
    counted = [r for r in results if r.counted]
    await conn.execute(
        _RECORD_UNNESTED,
        {
            "ids": [r.delivery_id for r in results],
            "statuses": [r.status for r in results],
            "counted": [int(r.counted) for r in results],
            "next_at": [r.next_attempt_at if r.status == "pending" else None for r in results],
            "status_codes": [r.status_code for r in results],
            "errors": [_cap(r.error, ERROR_CHARS) for r in results],
            "delivered": [r.attempted_at if r.status == "delivered" else None for r in results],
            "now": now,
            "owner": owner,
            "a_ids": [r.delivery_id for r in counted],
            "a_attempted_at": [r.attempted_at for r in counted],
            "a_status_codes": [r.status_code for r in counted],
            "a_errors": [_cap(r.error, ERROR_CHARS) for r in counted],
            "a_durations": [r.duration_ms for r in counted],
            "a_excerpts": [_cap(r.response_excerpt, EXCERPT_CHARS) for r in counted],
        },
    )


async def _rows(
    conn: AsyncConnection, results: Sequence[AttemptResult], *, now: datetime, owner: str
) -> None:
    """SQLite: an executemany of plain tuples, times written as UTCDateTime writes them (bound
    through SQLAlchemy's types, each row's values were a tenth of a SQLite drain's CPU)."""
    attempt_rows = [
        (
            r.delivery_id,
            _sqlite_time(r.attempted_at),
            r.status_code,
            _cap(r.error, ERROR_CHARS),
            r.duration_ms,
            _cap(r.response_excerpt, EXCERPT_CHARS),
        )
        for r in results
        if r.counted
    ]
    if attempt_rows:
        await conn.exec_driver_sql(_INSERT_ATTEMPTS_SQLITE, attempt_rows)
    updated_at = _sqlite_time(now)
    await conn.exec_driver_sql(
        _STILL_OURS_SQLITE,
        [
            (
                r.status,
                int(r.counted),
                _sqlite_time(r.next_attempt_at) if r.status == "pending" else None,
                r.status_code,
                _cap(r.error, ERROR_CHARS),
                _sqlite_time(r.attempted_at) if r.status == "delivered" else None,
                updated_at,
                r.delivery_id,
                owner,
            )
            for r in results
        ],
    )


def _sqlite_time(value: datetime | None) -> str | None:
    """A time as `UTCDateTime` stores it on SQLite: naive UTC text, microseconds always written,
    so stored times compare as text in time order."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the database; use aware UTC")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
