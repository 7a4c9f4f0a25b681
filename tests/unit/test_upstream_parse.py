"""The pure parts of the upstream client: job bodies, Retry-After, X-RateLimit-* headers."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from bridge.events.snapshot import ItemSnapshot, JobSnapshot
from bridge.outbound import parse_retry_after
from bridge.polling.outcomes import RateLimit
from bridge.polling.parse import parse_job, parse_rate_limit
from bridge.polling.upstream import _json

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)


def body(**job: Any) -> dict[str, Any]:
    return {"job": {"id": "j1", **job}, "request_id": "r"}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (body(), JobSnapshot(id="j1", status=None)),
        (body(status="queued"), JobSnapshot(id="j1", status="queued")),
        (body(status="upscaling"), JobSnapshot(id="j1", status="upscaling")),
        (body(status=""), JobSnapshot(id="j1", status=None)),
        (
            body(total_items=None, completed_items=None, failed_items=None, credits_used=None),
            JobSnapshot(id="j1", status=None),
        ),
        (
            body(total_items=20, completed_items=3, failed_items=1, credits_used=3),
            JobSnapshot(
                "j1", None, total_items=20, completed_items=3, failed_items=1, credits_used=3
            ),
        ),
        (body(items=None), JobSnapshot(id="j1", status=None)),
        (body(sandbox=True, credits_reserved=5, future={"a": 1}), JobSnapshot("j1", None)),
        (
            body(items=[{"id": "i1"}, {"id": "i2", "status": "retouching", "new": 1}]),
            JobSnapshot(
                "j1", None, items=(ItemSnapshot("i1", None), ItemSnapshot("i2", "retouching"))
            ),
        ),
        (
            body(
                items=[
                    {
                        "id": "i1",
                        "status": "failed",
                        "credits_used": None,
                        "error_code": "unsafe",
                        "error_message": "no",
                        "result_url": None,
                    }
                ]
            ),
            JobSnapshot(
                "j1",
                None,
                items=(ItemSnapshot("i1", "failed", error_code="unsafe", error_message="no"),),
            ),
        ),
        (
            body(items=[{"id": "i1", "external_id": 42, "result_url": ["x"], "credits_used": 2}]),
            JobSnapshot("j1", None, items=(ItemSnapshot("i1", None, credits_used=2),)),
        ),
    ],
    ids=[
        "minimal",
        "known-status",
        "unknown-status",
        "empty-status",
        "null-counters",
        "counters",
        "null-items",
        "extra-fields",
        "item-status-missing-and-unknown",
        "failed-item",
        "display-field-wrong-type-dropped",
    ],
)
def test_parse_job_accepts_usable_shapes(data: object, expected: JobSnapshot) -> None:
    assert parse_job(data) == expected


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (None, "body"),
        ([], "body"),
        ({}, "job:"),
        ({"job": None}, "job:"),
        ({"job": "j1"}, "job:"),
        ({"job": {}}, "job.id"),
        ({"job": {"id": 7}}, "job.id"),
        ({"job": {"id": ""}}, "job.id"),
        (body(status=3), "job.status"),
        (body(total_items="20"), "job.total_items"),
        (body(completed_items=-1), "job.completed_items"),
        (body(failed_items=True), "job.failed_items"),
        (body(credits_used=1.5), "job.credits_used"),
        (body(items={}), "job.items"),
        (body(items=["i1"]), "job.items[0]"),
        (body(items=[{"id": "i1"}, {"status": "queued"}]), "job.items[1].id"),
        (body(items=[{"id": "i1", "status": {"s": 1}}]), "job.items[0].status"),
        (body(items=[{"id": "i1", "credits_used": "1"}]), "job.items[0].credits_used"),
        (body(items=[{"id": "i1"}, {"id": "i1"}]), "job.items: duplicate"),
        (body(total_items=2**31), "job.total_items"),  # no 32-bit column holds it
        (body(items=[{"id": "i1", "credits_used": 2**64 - 1}]), "job.items[0].credits_used"),
        # Two ids that are one once made storable: refused as duplicates, never merged.
        (body(items=[{"id": "a\ud800"}, {"id": "a\udbff"}]), "job.items: duplicate"),
    ],
)
def test_parse_job_rejects_unusable_shapes(data: object, error: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(error)):
        parse_job(data)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("0", 0.0),
        ("120", 120.0),
        (" 7 ", 7.0),
        ("1.5", 1.5),
        ("-3", None),
        ("soon", None),
        ("", None),
        ("Sat, 28 Nov 2026 12:02:00 GMT", 120.0),
        ("Sat, 28 Nov 2026 11:59:00 GMT", 0.0),
        ("Sat, 28 Nov 2026 13:00:00 +0100", 0.0),
        ("Sat, 28 Nov 2026 12:00:30 -0000", 30.0),
        ("Sat, 99 Foo 2026 12:00:00 GMT", None),
    ],
)
def test_parse_retry_after_reads_seconds_and_http_dates(
    value: str | None, expected: float | None
) -> None:
    assert parse_retry_after(value, now=NOW) == expected


RESET = "1795870800"  # 2026-11-28T13:00:00Z
RESET_AT = datetime(2026, 11, 28, 13, tzinfo=UTC)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"Content-Type": "application/json"}, None),
        (
            {"x-ratelimit-limit": "120", "X-RATELIMIT-REMAINING": "0", "X-RateLimit-Reset": RESET},
            RateLimit(120, 0, RESET_AT),
        ),
        ({"X-RateLimit-Remaining": "5"}, RateLimit(None, 5, None)),
        (
            {"X-RateLimit-Reset": RESET + ".5"},
            RateLimit(None, None, RESET_AT.replace(microsecond=500000)),
        ),
        ({"X-RateLimit-Limit": "120", "X-RateLimit-Remaining": "121"}, RateLimit(120, None, None)),
        ({"X-RateLimit-Limit": "-1", "X-RateLimit-Remaining": "1e3"}, RateLimit(None, None, None)),
        ({"X-RateLimit-Limit": "120, 120"}, RateLimit(None, None, None)),
        ({"X-RateLimit-Reset": "60"}, RateLimit(None, None, None)),
        ({"X-RateLimit-Reset": "99999999999999"}, RateLimit(None, None, None)),
        ({"X-RateLimit-Reset": "Sat, 28 Nov 2026 13:00:00 GMT"}, RateLimit(None, None, None)),
    ],
    ids=[
        "none",
        "unrelated",
        "all-case-insensitive",
        "remaining-only",
        "fractional-reset",
        "remaining-over-limit",
        "not-integers",
        "repeated-header",
        "reset-as-delta",
        "reset-far-future",
        "reset-as-date",
    ],
)
def test_parse_rate_limit_keeps_only_sane_values(
    headers: dict[str, str], expected: RateLimit | None
) -> None:
    assert parse_rate_limit(httpx.Headers(headers)) == expected


def test_parse_job_makes_every_upstream_string_storable() -> None:
    odd = "a\x00b\ud800"  # "a\u0000b\ud800" in the JSON: a NUL and a lone surrogate
    item = {"id": odd, "status": odd, "external_id": odd, "error_code": odd, "error_message": odd}
    item |= {"result_url": odd, "thumbnail_url": odd}
    snapshot = parse_job({"job": {"id": "j1", "status": odd, "items": [item]}})
    stored = "a\ufffdb?"
    assert snapshot == JobSnapshot(
        "j1",
        stored,
        items=(ItemSnapshot(stored, stored, stored, stored, stored, stored, stored),),
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"a": "x\\u0000y"}', {"a": "x\x00y"}),  # orjson's
        (b'{"a": "x\\ud800y"}', {"a": "x\ud800y"}),  # orjson refuses it; the json module's
        (b'{"a": NaN}', None),
        (b'{"a": -Infinity}', None),
        (b'{"a": "\xff"}', None),  # not UTF-8
        (b"[" * 100_000, None),
        (b"", None),
        # orjson's numbers, whichever module reads the body (the json module only reads one
        # holding a surrogate's escape): beyond 64 bits a float, beyond a float refused.
        (b'{"n": 1' + b"0" * 400 + b"}", None),
        (b'{"a": "\\ud800", "n": 1' + b"0" * 400 + b"}", None),
        (b'{"a": "\\ud800", "n": 1' + b"0" * 4000 + b"}", None),
        (b'{"a": "\\ud800", "n": 1e400}', None),
        (b'{"a": "\\ud800", "n": NaN}', None),
        (b'{"a": "\\ud800", "n": 18446744073709551615}', {"a": "\ud800", "n": 2**64 - 1}),
        (b'{"a": "\\ud800", "n": 18446744073709551616}', {"a": "\ud800", "n": 2.0**64}),
        (b'{"a": "\\ud800", "n": -9223372036854775809}', {"a": "\ud800", "n": -(2.0**63)}),
        (b'{"a": "\\ud800", "n": 2.5}', {"a": "\ud800", "n": 2.5}),
    ],
    ids=[
        "nul",
        "lone-surrogate",
        "nan",
        "infinity",
        "not-utf8",
        "too-deep",
        "empty",
        "beyond-a-float",
        "surrogate-beyond-a-float",
        "surrogate-4000-digits",
        "surrogate-1e400",
        "surrogate-nan",
        "surrogate-u64",
        "surrogate-beyond-u64",
        "surrogate-below-i64",
        "surrogate-float",
    ],
)
def test_upstream_json_decodes_what_json_allows(raw: bytes, expected: object) -> None:
    decoded = _json(raw)
    assert decoded == expected
    if isinstance(expected, dict):  # 2**64 and 2.0**64 are equal: the types must be too
        assert isinstance(decoded, dict)
        assert {k: type(v) for k, v in decoded.items()} == {k: type(v) for k, v in expected.items()}
