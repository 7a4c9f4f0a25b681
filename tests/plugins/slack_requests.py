"""Requests as Slack sends them to an app: form-encoded slash commands and interaction payloads,
signed `X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:{timestamp}:{body}">` with the app's
signing secret, and `X-Slack-Request-Timestamp`. What slack-sdk's SignatureVerifier accepts."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # Slack's own documentation example's shape
TEAM_ID = "T0ALLOWED1"
CHANNEL_ID = "C0123456"
USER_ID = "U0PERSON1"


def sign(
    body: bytes, *, secret: str = SIGNING_SECRET, timestamp: int | None = None
) -> dict[str, str]:
    """The headers Slack sends with `body`: its timestamp (now by default) and v0 signature."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    base = b"v0:" + ts.encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


def command_body(
    text: str,
    *,
    response_url: str,
    team_id: str = TEAM_ID,
    channel_id: str = CHANNEL_ID,
    user_id: str = USER_ID,
    command: str = "/photos",
) -> bytes:
    """A slash command's form body, the fields Slack sends."""
    fields = {
        "token": "deprecated-verification-token",
        "team_id": team_id,
        "team_domain": "example",
        "channel_id": channel_id,
        "channel_name": "catalog",
        "user_id": user_id,
        "user_name": "person",
        "command": command,
        "text": text,
        "api_app_id": "A0BRIDGE01",
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": "1234.5678.abcdef",
    }
    return urlencode(fields).encode()


def button_body(
    action_id: str,
    value: str,
    *,
    response_url: str,
    team_id: str = TEAM_ID,
    channel_id: str = CHANNEL_ID,
    user_id: str = USER_ID,
) -> bytes:
    """A block_actions interaction (a button click) as Slack posts it: `payload=<json>`."""
    payload: dict[str, Any] = {
        "type": "block_actions",
        "team": {"id": team_id, "domain": "example"},
        "user": {"id": user_id, "username": "person", "team_id": team_id},
        "api_app_id": "A0BRIDGE01",
        "token": "deprecated-verification-token",
        "container": {
            "type": "message",
            "message_ts": "1764331201.000001",
            "channel_id": channel_id,
        },
        "trigger_id": "1234.5678.abcdef",
        "channel": {"id": channel_id, "name": "catalog"},
        "message": {"type": "message", "ts": "1764331201.000001", "text": "a job"},
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "bridge-actions",
                "value": value,
                "text": {"type": "plain_text", "text": "A button"},
                "action_ts": "1764331300.000000",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()
