"""The one classifier of failed sends: transient (retry on the schedule) or permanent (dead at once).

Every channel asks here whether what its service answered can be fixed by trying again, so the rules
of CONTRACT sections 5 and 6 live once. Pure: no I/O.

- Webhooks: 410 Gone is permanent; every other status (429, 5xx, other 4xx, 3xx) is transient.
- Slack incoming webhooks: 403 (invalid_token, action_prohibited), 404 (no_service,
  channel_not_found) and 410 (channel archived) are permanent.
- Slack's Web API: the errors no retry can fix until an operator changes the token or the channel.
- SMTP: a 5xx reply is permanent, a 4xx one transient; refused recipients are permanent only when
  every one of them was refused with a 5xx.

The bridge's own dead ends are permanent too, raised where they are found: a template that fails to
render for this event, and a destination the config no longer has (CONTRACT section 6).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

Service = Literal["webhook", "slack_webhook"]

GONE = 410
_PERMANENT_STATUSES: dict[Service, frozenset[int]] = {
    "webhook": frozenset({GONE}),
    "slack_webhook": frozenset({403, 404, GONE}),
}

SLACK_PERMANENT_ERRORS = frozenset(
    {
        "account_inactive",
        "channel_not_found",
        "ekm_access_denied",
        "invalid_auth",
        "is_archived",
        "missing_scope",
        "msg_too_long",
        "no_permission",
        "not_allowed_token_type",
        "not_authed",
        "not_in_channel",
        "team_access_not_granted",
        "token_expired",
        "token_revoked",
    }
)


def http_status_is_permanent(status: int, *, service: Service = "webhook") -> bool:
    """True when an HTTP answer of `status` from `service` will not change on a retry."""
    return status in _PERMANENT_STATUSES[service]


def slack_error_is_permanent(error: str) -> bool:
    """True when Slack's Web API `error` code needs an operator, not a retry."""
    return error in SLACK_PERMANENT_ERRORS


def smtp_reply_is_permanent(codes: Iterable[int]) -> bool:
    """True when every SMTP reply code given is a permanent (5xx) refusal."""
    seen = list(codes)
    return bool(seen) and all(500 <= code < 600 for code in seen)
