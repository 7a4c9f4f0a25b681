"""one_of / pair_of: `IN` a list of values passed as one parameter (an array, or JSON on SQLite).

SQLAlchemy renders an IN list's every value into the statement on each execution, which for the
hundreds of jobs of a poll batch cost more CPU than the query; and PostgreSQL plans a list of
(account, job id) pairs as one OR filter over every active row (40 ms for 300 pairs among 10,000
watches), where a join to the pairs unnested is a few index probes.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import String, any_, bindparam, func, literal_column, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql import ColumnElement


def one_of(
    column: ColumnElement[Any], values: Collection[str], dialect: str
) -> ColumnElement[bool]:
    """`column IN values`, the values as one parameter."""
    if dialect == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(String)))
    listed = func.json_each(bindparam(None, json.dumps(list(values)))).table_valued("value")
    return column.in_(select(listed.c.value))


def pair_of(
    first: ColumnElement[Any],
    second: ColumnElement[Any],
    pairs: Sequence[tuple[str, str]],
    dialect: str,
) -> ColumnElement[bool]:
    """`(first, second) IN pairs`, the pairs as one parameter (or two arrays)."""
    if dialect == "postgresql":
        firsts = bindparam(None, [a for a, _ in pairs], type_=ARRAY(String))
        seconds = bindparam(None, [b for _, b in pairs], type_=ARRAY(String))
        table = func.unnest(firsts, seconds).table_valued("a", "b").render_derived()
        return tuple_(first, second).in_(select(table.c.a, table.c.b))
    table = func.json_each(bindparam(None, json.dumps(pairs))).table_valued("value")
    return tuple_(first, second).in_(
        select(
            func.json_extract(table.c.value, literal_column("'$[0]'")),
            func.json_extract(table.c.value, literal_column("'$[1]'")),
        )
    )
