"""Rendering: the one Jinja environment, what templates see, their filters and sample events."""

from bridge.rendering.environment import (
    SLACK_BROADCAST_EVENTS,
    TEMPLATES_BY_CHANNEL,
    Renderer,
    TemplateProblem,
    packaged_templates_dir,
)
from bridge.rendering.filters import (
    FILTERS,
    clip,
    http_url,
    mrkdwn,
    progress_bar,
    short_id,
    status_emoji,
    status_label,
    to_json,
)
from bridge.rendering.view import template_context

__all__ = [
    "FILTERS",
    "SLACK_BROADCAST_EVENTS",
    "TEMPLATES_BY_CHANNEL",
    "Renderer",
    "TemplateProblem",
    "clip",
    "http_url",
    "mrkdwn",
    "packaged_templates_dir",
    "progress_bar",
    "short_id",
    "status_emoji",
    "status_label",
    "template_context",
    "to_json",
]
