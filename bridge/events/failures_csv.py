"""failures_csv(rows): an import's failed images as the CSV of CONTRACT section 7, ready to resubmit.

One format for the API's streamed download and the summary email's attachment. Pure.

Cells that a spreadsheet would run as a formula (starting with = + - @, a tab or a carriage
return) are prefixed with a single quote, as OWASP advises against CSV injection.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import Any

HEADER = ("external_id", "job_id", "item_id", "error_code", "error_message")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """One cell: '' for nothing, a formula-looking value defused with a leading quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def failures_csv(rows: Iterable[Any], *, header: bool = True) -> str:
    """The header (unless a later chunk of a stream) and one line per failed image (objects
    with the header's attributes)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow(HEADER)
    for row in rows:
        writer.writerow([csv_cell(getattr(row, name, None)) for name in HEADER])
    return out.getvalue()


async def failures_csv_stream(batches: AsyncIterable[Iterable[Any]]) -> AsyncIterator[bytes]:
    """The CSV as UTF-8 chunks: the header, then one chunk per batch, so a large import's failures
    stream without being held whole."""
    yield failures_csv([]).encode("utf-8")
    async for batch in batches:
        yield failures_csv(batch, header=False).encode("utf-8")
