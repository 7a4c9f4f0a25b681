"""storage_fault(exc): what storage fault an exception reports ("unreachable", "disk full", ...),
or None when it is not one (then it is a bug). The API answers a fault with 503, not 500.

A fault is the database being down, restarting, full, read-only, overloaded or locked: the same
request can succeed later with nothing changed on the caller's side.
"""

from __future__ import annotations

import sqlite3
import traceback
from collections.abc import Iterator

from sqlalchemy import exc as sa_exc

# SQLite primary result codes (the low byte of an extended code) that are faults, not bugs.
_SQLITE = {
    sqlite3.SQLITE_FULL: "disk full",
    sqlite3.SQLITE_READONLY: "read-only",
    sqlite3.SQLITE_PERM: "read-only",
    sqlite3.SQLITE_CANTOPEN: "cannot open",
    sqlite3.SQLITE_IOERR: "I/O error",
    sqlite3.SQLITE_BUSY: "busy",
    sqlite3.SQLITE_LOCKED: "busy",
}
# PostgreSQL SQLSTATEs (whole codes, then classes) that are faults; asyncpg puts it on `sqlstate`.
_POSTGRES = {
    "53100": "disk full",
    "25006": "read-only",  # a read-only transaction: the primary became a standby
    "57P03": "starting up",  # cannot connect now
    "08": "unreachable",  # connection exceptions, also a connection closed mid-operation
    "57": "unreachable",  # operator intervention: shutdown, crash, cancelled
    "53": "overloaded",  # insufficient resources: out of memory, too many connections
    "40": "busy",  # transaction rollback: serialization failure, deadlock
    "58": "I/O error",  # system errors outside PostgreSQL
}
_DRIVERS = ("asyncpg", "aiosqlite", "sqlite3", "sqlalchemy")


class StorageFault(Exception):
    """A fault found before the driver reported one (a read-only SQLite file, say); the message
    names the path, `fault` says it in a few words."""

    def __init__(self, fault: str, message: str) -> None:
        super().__init__(message)
        self.fault = fault


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what SQLAlchemy wrapped (`orig`), and its causes, each once."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [
            e
            for e in (getattr(current, "orig", None), current.__cause__, current.__context__)
            if isinstance(e, BaseException)
        ]


def _raised_by_driver(exc: BaseException) -> bool:
    """True when the exception came out of the database driver (a socket it opened, say)."""
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        module = str(frame.f_globals.get("__name__", ""))
        if module.split(".", 1)[0] in _DRIVERS:
            return True
    return False


def _one(exc: BaseException) -> str | None:
    if isinstance(exc, StorageFault):
        return exc.fault
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        return _SQLITE.get(code & 0xFF) if isinstance(code, int) else None
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str) and len(sqlstate) == 5:
        return _POSTGRES.get(sqlstate) or _POSTGRES.get(sqlstate[:2])
    if isinstance(exc, sa_exc.TimeoutError):
        return "busy"  # no pooled connection came free in time
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return "unreachable"
    if isinstance(exc, OSError) and _raised_by_driver(exc):
        return "unreachable"  # refused, reset or timed out while connecting
    return None


def storage_fault(exc: BaseException) -> str | None:
    """The storage fault behind `exc` in a few words, or None when `exc` is not one."""
    for link in _chain(exc):
        fault = _one(link)
        if fault is not None:
            return fault
    return None
