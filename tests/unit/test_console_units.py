"""The console's pure parts: the sign-in throttle on an injected clock, the page filters, the
thumbnail type sniffing and the `back`/`next` path check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bridge.console.page import safe_back
from bridge.console.throttle import SignInThrottle
from bridge.console.thumbnails import image_type
from bridge.rendering.pages import ago, duration, percent, stamp, tail_id

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class Ticks:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_signin_throttle_waits_after_five_failures_from_one_address() -> None:
    ticks = Ticks()
    throttle = SignInThrottle(monotonic=ticks)
    for _ in range(4):
        throttle.failed("10.0.0.1")
        ticks.now += 1
    assert throttle.wait_s("10.0.0.1") == 0
    throttle.failed("10.0.0.1")
    # The oldest failure (at 1000) leaves the window at 1060; it is now 1004.
    assert throttle.wait_s("10.0.0.1") == pytest.approx(56.0)
    assert throttle.wait_s("10.0.0.2") == 0  # another address is not held up
    ticks.now = 1059.5
    assert throttle.wait_s("10.0.0.1") == pytest.approx(0.5)
    ticks.now = 1060.0
    assert throttle.wait_s("10.0.0.1") == 0  # one failure left the window: four remain


def test_signin_throttle_forgets_failures_after_the_window() -> None:
    ticks = Ticks()
    throttle = SignInThrottle(monotonic=ticks, per_address=2, window_s=10.0)
    throttle.failed("a")
    throttle.failed("a")
    assert throttle.wait_s("a") == pytest.approx(10.0)
    ticks.now += 10.0
    assert throttle.wait_s("a") == 0
    throttle.failed("a")
    assert throttle.wait_s("a") == 0


def test_signin_throttle_limits_every_address_together() -> None:
    ticks = Ticks()
    throttle = SignInThrottle(monotonic=ticks, per_address=5, overall=30)
    for i in range(29):
        throttle.failed(f"10.0.{i}.1")
    assert throttle.wait_s("192.0.2.1") == 0
    throttle.failed("10.0.99.1")
    assert throttle.wait_s("192.0.2.1") == pytest.approx(60.0)
    ticks.now += 60.0
    assert throttle.wait_s("192.0.2.1") == 0


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "—"),
        (-5, "0 s"),
        (0, "0 s"),
        (45.9, "45 s"),
        (60, "1 min"),
        (3599, "59 min"),
        (3600, "1 h"),
        (3600 + 5 * 60, "1 h 5 min"),
        (86399, "23 h 59 min"),
        (86400, "1 d"),
        (2 * 86400 + 4 * 3600 + 59, "2 d 4 h"),
    ],
)
def test_pages_duration(seconds: float | None, shown: str) -> None:
    assert duration(seconds) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "—"),
        ("", "—"),
        (datetime(2026, 11, 28, 9, 5, 7, tzinfo=UTC), "2026-11-28 09:05:07 UTC"),
        ("2026-11-28T09:05:07Z", "2026-11-28 09:05:07 UTC"),
        ("2026-11-28T09:05:07+00:00", "2026-11-28 09:05:07 UTC"),
        ("not a date", "not a date"),
    ],
)
def test_pages_stamp(value: datetime | str | None, shown: str) -> None:
    assert stamp(value) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, ""),
        ("dlv_1", "dlv_1"),
        ("123456789012", "123456789012"),
        ("1234567890123", "…67890123"),
        ("dlv_01a23a9c65c794e704b1f2990822b49d", "…0822b49d"),
    ],
)
def test_pages_tail_id(value: str | None, shown: str) -> None:
    assert tail_id(value) == shown


@pytest.mark.parametrize(
    ("part", "whole", "shown"),
    [
        (None, 10, 0),
        (5, None, 0),
        (5, 0, 0),
        (0, 10, 0),
        (1, 3, 33),
        (2, 3, 67),
        (10, 10, 100),
        (15, 10, 100),
        (-1, 10, 0),
        (7, 120, 6),
    ],
)
def test_pages_percent(part: float | None, whole: float | None, shown: int) -> None:
    assert percent(part, whole) == shown


@pytest.mark.parametrize(
    ("moment", "shown"),
    [
        (None, "—"),
        (NOW, "0 s ago"),
        (NOW - timedelta(minutes=12), "12 min ago"),
        (NOW - timedelta(days=1, hours=2), "1 d 2 h ago"),
        (NOW + timedelta(minutes=3), "in 3 min"),
    ],
)
def test_pages_ago(moment: datetime | None, shown: str) -> None:
    assert ago(moment, NOW) == shown


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "image/png"),
        (b"\xff\xd8\xff\xe0\0\x10JFIF", "image/jpeg"),
        (b"GIF87a\x01\0", "image/gif"),
        (b"GIF89a\x01\0", "image/gif"),
        (b"RIFF\x24\0\0\0WEBPVP8 ", "image/webp"),
        (b"\0\0\0\x1cftypavif\0\0\0\0", "image/avif"),
        (b"\0\0\0\x1cftypavis\0\0\0\0", "image/avif"),
        (b"RIFF\x24\0\0\0WAVEfmt ", None),
        (b"\0\0\0\x18ftypmp42", None),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", None),
        (b"<!doctype html>", None),
        (b"\x89PNG", None),  # a cut signature
        (b"", None),
    ],
)
def test_thumbnails_image_type(data: bytes, kind: str | None) -> None:
    assert image_type(data) == kind


@pytest.mark.parametrize(
    ("target", "back"),
    [
        ("/console/", "/console/"),
        (
            "/console/deliveries?status=dead&channel=ops-hook",
            "/console/deliveries?status=dead&channel=ops-hook",
        ),
        ("/console/imports/imp_1", "/console/imports/imp_1"),
        (None, "/console/"),
        ("", "/console/"),
        ("/console", "/console/"),
        ("/v1/ops/deliveries", "/console/"),
        ("//evil.example", "/console/"),
        ("https://evil.example/console/", "/console/"),
        ("/console//evil.example", "/console/"),
        ("/console/..\\evil", "/console/"),
        ("/console/\\\\evil.example", "/console/"),
        ("/console/\r\nSet-Cookie: x=1", "/console/"),
        ("/console/\tx", "/console/"),
        ("/console/ x", "/console/"),
        ("/console/\x7f", "/console/"),
    ],
)
def test_page_safe_back(target: str | None, back: str) -> None:
    assert safe_back(target) == back


def test_page_safe_back_default() -> None:
    assert safe_back("//evil.example", "/console/deliveries?status=dead") == (
        "/console/deliveries?status=dead"
    )
