"""A webhook's body: compact JSON, non-ASCII characters escaped, as json.dumps writes it."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from bridge.delivery.channels.webhook import _compact_json

_EDGES = st.text(alphabet='ab\x00\x1f\x7f\x80"\\/\n\u2028\U0001f600')  # escapes' edges
_SCALARS = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text() | _EDGES
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
_PAYLOADS = st.dictionaries(st.text(), _VALUES, max_size=6)


@given(_PAYLOADS)
def test_the_body_is_what_json_dumps_writes(payload):
    assert _compact_json(payload) == json.dumps(payload, separators=(",", ":")).encode()


@given(st.dictionaries(st.text(), st.floats(allow_nan=False, allow_infinity=False), max_size=6))
def test_floats_read_back_as_they_were(payload):
    assert json.loads(_compact_json(payload)) == payload


def test_non_ascii_text_and_del_are_escaped():
    assert _compact_json({"note": "café ✓"}) == b'{"note":"caf\\u00e9 \\u2713"}'
    assert _compact_json({"note": "a\x7fb"}) == b'{"note":"a\\u007fb"}'


def test_what_orjson_refuses_is_written_by_json_dumps():
    payload = {"big": 2**70, "odd": "\ud800"}
    assert _compact_json(payload) == json.dumps(payload, separators=(",", ":")).encode()
