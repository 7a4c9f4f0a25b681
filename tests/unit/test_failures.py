import pytest

from bridge.delivery.failures import (
    http_status_is_permanent,
    slack_error_is_permanent,
    smtp_reply_is_permanent,
)


@pytest.mark.parametrize(
    ("status", "service", "permanent"),
    [
        (410, "webhook", True),
        (400, "webhook", False),
        (403, "webhook", False),
        (404, "webhook", False),
        (429, "webhook", False),
        (500, "webhook", False),
        (503, "webhook", False),
        (301, "webhook", False),
        (403, "slack_webhook", True),
        (404, "slack_webhook", True),
        (410, "slack_webhook", True),
        (400, "slack_webhook", False),
        (429, "slack_webhook", False),
        (500, "slack_webhook", False),
    ],
)
def test_failures_http_status_by_service(status, service, permanent):
    assert http_status_is_permanent(status, service=service) is permanent


@pytest.mark.parametrize(
    ("error", "permanent"),
    [
        ("invalid_auth", True),
        ("account_inactive", True),
        ("token_revoked", True),
        ("channel_not_found", True),
        ("not_in_channel", True),
        ("is_archived", True),
        ("msg_too_long", True),
        ("ratelimited", False),
        ("internal_error", False),
        ("fatal_error", False),
        ("message_not_found", False),
    ],
)
def test_failures_slack_errors(error, permanent):
    assert slack_error_is_permanent(error) is permanent


@pytest.mark.parametrize(
    ("codes", "permanent"),
    [([550], True), ([554, 553], True), ([450], False), ([550, 451], False), ([], False)],
)
def test_failures_smtp_replies(codes, permanent):
    assert smtp_reply_is_permanent(codes) is permanent
