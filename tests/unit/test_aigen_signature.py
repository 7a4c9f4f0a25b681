"""verify_aigen_signature refuses every malformed header with SignatureProblem, never a crash."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bridge.api.aigen_signature import SignatureProblem, expected_signature, verify_aigen_signature

KEY = "aigen_live_unit_key"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
STAMP = str(int(NOW.timestamp()))
BODY = b'{"job_id": "x"}'


def _headers(**overrides: str) -> dict[str, str]:
    good = {
        "x-aigen-signature": expected_signature(
            api_key=KEY, timestamp=STAMP, event_id="evt_1", body=BODY
        ),
        "x-aigen-timestamp": STAMP,
        "x-aigen-event-id": "evt_1",
    }
    return {**good, **overrides}


def test_aigen_signature_accepts_a_good_signal() -> None:
    assert verify_aigen_signature(api_key=KEY, headers=_headers(), body=BODY, now=NOW) == "evt_1"


@pytest.mark.parametrize(
    "headers",
    [
        # Starlette decodes header bytes as latin-1: b"\xb9" arrives as the superscript digit "¹".
        {"x-aigen-timestamp": "\u00b9"},
        {"x-aigen-timestamp": STAMP[:-1] + "\u00b2"},
        {"x-aigen-timestamp": "\u0661\u0667"},  # Arabic-Indic digits: isdigit() but not ASCII
        {"x-aigen-timestamp": "9" * 5000},  # past int()'s digit limit
        {"x-aigen-timestamp": "-1"},
        {"x-aigen-signature": "v1=\u00e9"},
        {"x-aigen-signature": "v1=" + "\u00ff" * 64},
        {"x-aigen-signature": "\u00b2"},
        {"x-aigen-event-id": "evt_\u00e9"},
    ],
    ids=[
        "superscript-timestamp",
        "superscript-last-digit",
        "arabic-digits",
        "huge-timestamp",
        "negative",
        "latin1-signature",
        "latin1-signature-64",
        "superscript-signature",
        "latin1-event-id",
    ],
)
def test_aigen_signature_refuses_non_ascii_headers(headers: dict[str, str]) -> None:
    with pytest.raises(SignatureProblem):
        verify_aigen_signature(api_key=KEY, headers=_headers(**headers), body=BODY, now=NOW)
