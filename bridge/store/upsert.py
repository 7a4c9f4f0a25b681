"""insert_for(dialect, table): the dialect's INSERT, which knows ON CONFLICT on both backends."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_for(dialect: str, table: Table) -> Any:
    """Return an INSERT construct with `on_conflict_do_*` for SQLite or PostgreSQL."""
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
