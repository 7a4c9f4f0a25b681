"""Rendering: the one Jinja environment, what templates see, their filters and sample events."""

from bridge.rendering.environment import (
    SLACK_BROADCAST_EVENTS,
    SLACK_IMPORT_BROADCAST,
    TEMPLATES_BY_CHANNEL,
    Renderer,
    TemplateProblem,
    is_import_template,
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
    utc_time,
)
from bridge.rendering.import_context import import_context
from bridge.rendering.view import template_context

__all__ = [
    "FILTERS",
    "SLACK_BROADCAST_EVENTS",
    "SLACK_IMPORT_BROADCAST",
    "TEMPLATES_BY_CHANNEL",
    "Renderer",
    "TemplateProblem",
    "clip",
    "http_url",
    "import_context",
    "is_import_template",
    "mrkdwn",
    "packaged_templates_dir",
    "progress_bar",
    "short_id",
    "status_emoji",
    "status_label",
    "template_context",
    "to_json",
    "utc_time",
]
