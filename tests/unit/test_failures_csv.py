import csv
import io

import pytest

from bridge.events.failures_csv import HEADER, csv_cell, failures_csv
from bridge.store.imports import FailureRecord


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (None, ""),
        ("sku-1", "sku-1"),
        ("=SUM(A1:A9)", "'=SUM(A1:A9)"),
        ("+1 555", "'+1 555"),
        ("-2", "'-2"),
        ("@cmd", "'@cmd"),
        ("\tTAB", "'\tTAB"),
        ("\rCR", "'\rCR"),
        ("a=b", "a=b"),
        (42, "42"),
    ],
)
def test_csv_cell_defuses_what_a_spreadsheet_would_run(value, cell):
    assert csv_cell(value) == cell


def test_failures_csv_has_the_contract_header_and_one_quoted_line_per_failure():
    rows = [
        FailureRecord(1, "job-1", "item-1", "=HYPERLINK(1)", "segmentation", 'said "no", twice'),
        FailureRecord(2, "job-1", "item-2", None, None, "line one\nline two"),
    ]

    parsed = list(csv.reader(io.StringIO(failures_csv(rows))))

    assert (
        tuple(parsed[0])
        == HEADER
        == (
            "external_id",
            "job_id",
            "item_id",
            "error_code",
            "error_message",
        )
    )
    assert parsed[1] == ["'=HYPERLINK(1)", "job-1", "item-1", "segmentation", 'said "no", twice']
    assert parsed[2] == ["", "job-1", "item-2", "", "line one\nline two"]
