"""fit_blocks(blocks): keep whatever a template rendered inside Slack's Block Kit limits (pure);
render_pair(...): a Slack template's blocks and text fallback, fitted."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bridge.delivery.channels import SendError
from bridge.rendering import Renderer, TemplateProblem, clip

# Slack's Block Kit limits (api.slack.com/reference/block-kit): past them chat.postMessage fails.
MAX_BLOCKS = 50
MAX_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_FIELDS = 10
MAX_CONTEXT_ELEMENTS = 10
MAX_ACTIONS_ELEMENTS = 25
MAX_BUTTON_TEXT = 75
CONFIRM_LIMITS = {"title": 100, "text": 300, "confirm": 30, "deny": 30}  # a confirm dialog's parts


def fit_blocks(blocks: Any) -> list[dict[str, Any]]:
    """Keep Block Kit inside Slack's limits whatever a template made: 50 blocks (an `actions`
    block is kept when others are left out), text lengths, buttons and their confirm dialogs."""
    if not isinstance(blocks, list) or not all(isinstance(b, dict) for b in blocks):
        raise ValueError("a Block Kit template must render a JSON list of objects")
    fitted = [
        _fit(block, MAX_HEADER_TEXT if block.get("type") == "header" else MAX_TEXT)
        for block in blocks
    ]
    if len(fitted) > MAX_BLOCKS:
        # The buttons stay (they are how a channel mutes a noisy message); text gives way.
        actions = [b for b in fitted if b.get("type") == "actions"][: MAX_BLOCKS // 2]
        rest = [b for b in fitted if b.get("type") != "actions"]
        kept = MAX_BLOCKS - 1 - len(actions)
        note = {
            "type": "mrkdwn",
            "text": f"…and {len(rest) - kept} more blocks, left out to fit Slack's limit",
        }
        fitted = [*rest[:kept], {"type": "context", "elements": [note]}, *actions]
    return fitted


def _fit(value: Any, limit: int) -> Any:
    """Clip every text object under `value` to `limit` characters (fields to 2,000), recursively."""
    if isinstance(value, list):
        return [_fit(v, limit) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, child in value.items():
        if (
            key == "text"
            and isinstance(child, str)
            and value.get("type") in ("mrkdwn", "plain_text")
        ):
            out[key] = clip(child, limit)
        elif key == "fields" and isinstance(child, list):
            out[key] = _fit(child[:MAX_FIELDS], min(limit, MAX_FIELD_TEXT))
        elif key == "elements" and value.get("type") == "context" and isinstance(child, list):
            out[key] = _fit(child[:MAX_CONTEXT_ELEMENTS], limit)
        elif key == "elements" and value.get("type") == "actions" and isinstance(child, list):
            out[key] = _fit(child[:MAX_ACTIONS_ELEMENTS], limit)
        elif key == "text" and value.get("type") == "button":
            out[key] = _fit(child, MAX_BUTTON_TEXT)
        elif key == "confirm" and isinstance(child, dict) and "title" in child:
            out[key] = {k: _fit(v, CONFIRM_LIMITS.get(k, limit)) for k, v in child.items()}
        else:
            out[key] = _fit(child, limit)
    return out


def render_pair(
    renderer: Renderer, base: str, context: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], str]:
    """Block Kit from `{base}.json.j2`, fitted to Slack's limits, and its text fallback from
    `{base}.txt.j2`; a template that fails is a permanent SendError (it fails on every retry)."""
    try:
        blocks = fit_blocks(renderer.render_json(f"{base}.json.j2", context))
        text = clip(renderer.render(f"{base}.txt.j2", context).strip(), MAX_TEXT)
    except (TemplateProblem, ValueError) as exc:
        raise SendError(f"template problem: {exc}", permanent=True) from None
    return blocks, text
