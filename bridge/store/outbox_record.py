"""write_attempts(conn, results, ...): a batch of delivery attempts recorded, each delivery moved on.

On PostgreSQL the batch goes as one JSON document, turned into rows by the server: one statement
whatever the batch's size, run on its own (`Outbox._write_attempts`), where an executemany bound
every row's values one by one (a quarter of a delivery drain's CPU). SQLite, whose statements run
in the same process anyway, takes the rows as an executemany of tuples.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.storable import storable
from bridge.store.tables import aware_utc

if TYPE_CHECKING:
    from bridge.store.outbox import AttemptResult

EXCERPT_CHARS = 1_000
ERROR_CHARS = 1_000


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


# PostgreSQL: one statement, run on its own (autocommit: one round trip, where BEGIN, two
# statements and COMMIT were four, each waking the server). The batch goes as one JSON document
# (`json_to_recordset`) and the ids as one array, through the driver as is: fifteen arrays, bound
# through SQLAlchemy's types, cost 0.83 ms of CPU per batch of 33 against 0.52. The rows are
# locked in id order, each before it is updated (the order cancel_watch locks them in: two writers
# never deadlock), and moved on unless the lease passed to another owner or the delivery is no
# longer pending (a watch cancelled meanwhile stays dead), as the locked rows say (FOR UPDATE
# returns their latest version): tested beside the ids, `status = 'pending'` led a planner with
# statistics from before a burst to scan every pending row. The counted attempts are inserted
# whatever became of the lease (they happened). A data-modifying WITH runs to completion whether
# or not the INSERT reads it.
_RECORD_JSON = (
    "WITH u AS ("
    "  SELECT * FROM json_to_recordset($1::json) AS u("
    "   id text, status text, counted int, next_attempt_at timestamptz, status_code int,"
    "   error text, delivered_at timestamptz, attempted_at timestamptz, duration_ms float8,"
    "   excerpt text)"
    "), locked AS ("
    "  SELECT id, status, lease_owner FROM deliveries WHERE id = ANY($2::varchar[])"
    "  ORDER BY id FOR UPDATE"
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
    "  updated_at = $3"
    " FROM locked, u"
    " WHERE d.id = locked.id AND u.id = locked.id"
    "  AND locked.lease_owner = $4 AND locked.status = 'pending'"
    " RETURNING d.id"
    ")"
    " INSERT INTO delivery_attempts"
    " (delivery_id, attempted_at, status_code, error, duration_ms, response_excerpt)"
    " SELECT id, attempted_at, status_code, error, duration_ms, excerpt FROM u WHERE counted = 1"
)


def _cap(text: str | None, limit: int) -> str | None:
    """The text cut to `limit`, storable whatever a receiver answered: a NUL (which PostgreSQL's
    text cannot hold) as U+FFFD, a lone surrogate (a mail server's byte that is not UTF-8, as
    aiosmtplib decodes it) as "?". Either failed the whole batch's write, and every delivery in it
    was sent again."""
    return None if text is None else storable(text[:limit])


async def write_attempts(
    conn: AsyncConnection, results: Sequence[AttemptResult], *, now: datetime, owner: str
) -> None:
    """Insert the counted attempts and move each delivery on (see `Outbox.record_attempts`);
    `results` in delivery id order."""
    if conn.dialect.name == "postgresql":
        await _as_json(conn, results, now=now, owner=owner)
    else:
        await _rows(conn, results, now=now, owner=owner)


async def _as_json(
    conn: AsyncConnection, results: Sequence[AttemptResult], *, now: datetime, owner: str
) -> None:
    rows = [  # times as aware UTC: orjson writes them RFC 3339, offset included
        {
            "id": r.delivery_id,
            "status": r.status,
            "counted": int(r.counted),
            "next_attempt_at": _utc(r.next_attempt_at) if r.status == "pending" else None,
            "status_code": r.status_code,
            "error": _cap(r.error, ERROR_CHARS),
            "delivered_at": _utc(r.attempted_at) if r.status == "delivered" else None,
            "attempted_at": _utc(r.attempted_at),
            "duration_ms": r.duration_ms,
            "excerpt": _cap(r.response_excerpt, EXCERPT_CHARS),
        }
        for r in results
    ]
    ids = [r.delivery_id for r in results]
    await conn.exec_driver_sql(
        _RECORD_JSON, (orjson.dumps(rows).decode(), ids, aware_utc(now), owner)
    )


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else aware_utc(value)


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
    return aware_utc(value).replace(tzinfo=None).isoformat(" ", "microseconds")
