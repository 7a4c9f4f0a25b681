"""storage_fault tells a storage fault (503, retry later) from a bug (500), through SQLAlchemy's
wrapping, from real driver errors where they can be made."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc

from bridge.store.faults import storage_fault


def _sqlite_error(tmp_path: Path, *, pragma: str, sql: str) -> sqlite3.Error:
    path = tmp_path / "f.db"
    setup = sqlite3.connect(path)
    setup.execute("CREATE TABLE t (x TEXT)")
    setup.commit()
    setup.close()
    uri = f"file:{path}?mode=ro" if pragma == "read-only" else str(path)
    conn = sqlite3.connect(uri, uri=pragma == "read-only")
    if pragma != "read-only":
        conn.execute(pragma)
    try:
        conn.execute(sql)
        conn.commit()
    except sqlite3.Error as exc:
        return exc
    finally:
        conn.close()
    raise AssertionError("no error")


@pytest.mark.parametrize(
    ("pragma", "sql", "fault"),
    [
        ("PRAGMA max_page_count = 2", "INSERT INTO t VALUES (randomblob(100000))", "disk full"),
        ("read-only", "INSERT INTO t VALUES ('x')", "read-only"),
        ("PRAGMA query_only = 1", "SELECT * FROM nowhere", None),  # a bug: no such table
    ],
)
def test_storage_fault_of_real_sqlite_errors(
    tmp_path: Path, pragma: str, sql: str, fault: str | None
) -> None:
    error = _sqlite_error(tmp_path, pragma=pragma, sql=sql)
    assert storage_fault(error) == fault
    wrapped = sa_exc.OperationalError("INSERT ...", {}, error)  # as SQLAlchemy raises it
    assert storage_fault(wrapped) == fault


def _caused(outer: BaseException, cause: BaseException) -> BaseException:
    outer.__cause__ = cause
    return outer


@pytest.mark.parametrize(
    ("exc", "fault"),
    [
        (
            asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
            "starting up",
        ),
        (asyncpg.exceptions.AdminShutdownError("terminating connection"), "unreachable"),
        (asyncpg.exceptions.ConnectionDoesNotExistError("closed mid-operation"), "unreachable"),
        (asyncpg.exceptions.DiskFullError("could not extend file"), "disk full"),
        (asyncpg.exceptions.ReadOnlySQLTransactionError("read-only transaction"), "read-only"),
        (asyncpg.exceptions.TooManyConnectionsError("too many clients"), "overloaded"),
        (asyncpg.exceptions.DeadlockDetectedError("deadlock"), "busy"),
        (
            _caused(RuntimeError("adapter"), asyncpg.exceptions.CannotConnectNowError("x")),
            "starting up",
        ),
        (sa_exc.TimeoutError("QueuePool limit reached"), "busy"),
        (asyncpg.exceptions.UniqueViolationError("duplicate key"), None),
        (sa_exc.IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE")), None),
        (ConnectionRefusedError(111, "refused, but not by a driver"), None),
        (ValueError("a bug"), None),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_storage_fault_classifies(exc: BaseException, fault: str | None) -> None:
    assert storage_fault(exc) == fault


async def test_storage_fault_of_a_refused_connection_from_the_driver() -> None:
    with pytest.raises(OSError) as raised:
        await asyncpg.connect("postgresql://postgres@127.0.0.1:9/x", timeout=5)
    assert storage_fault(raised.value) == "unreachable"
