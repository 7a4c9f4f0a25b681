import pytest

from bridge.ids import clean_request_id, new_id


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("req-1", "req-1"),
        (b"req-1", "req-1"),
        ("x" * 160, "x" * 160),
        ("x" * 161, None),
        ("", None),
        ("tab\there", None),
        ("caf\u00e9", None),
        (b"caf\xc3\xa9", None),
        (None, None),
        (42, None),
    ],
)
def test_ids_clean_request_id_keeps_only_short_printable_ascii(value, expected):
    assert clean_request_id(value) == expected


def test_ids_new_id_sorts_by_creation():
    first, second = new_id("wat"), new_id("wat")
    assert first.startswith("wat_") and len(first) == 4 + 32
    assert first[:16] <= second[:16]
