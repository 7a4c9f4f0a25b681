"""PageRenderer: the console's Jinja environment, apart from the messages' so every page autoescapes.

Page templates ship in `bridge/rendering/pages/`; operators cannot override them (a page is part of
the bridge, not a message people configure). Undefined names fail loudly, every template is
compiled at start so a broken one fails before the first request.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2

from bridge.rendering.filters import FILTERS

PAGES_DIR = Path(__file__).with_name("pages")


def duration(seconds: float | int | None) -> str:
    """A span people read at a glance: '45 s', '12 min', '3 h 5 min', '2 d 4 h'."""
    if seconds is None:
        return "—"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        h, m = divmod(s // 60, 60)
        return f"{h} h {m} min" if m else f"{h} h"
    d, h = divmod(s // 3600, 24)
    return f"{d} d {h} h" if h else f"{d} d"


def stamp(value: datetime | str | None) -> str:
    """A moment as 'YYYY-MM-DD HH:MM:SS UTC'; '—' for none."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def tail_id(value: Any) -> str:
    """The distinctive end of an id ('dlv_…3f9a2c'), since ours share a time-sorted prefix."""
    text = str(value or "")
    return text if len(text) <= 12 else "…" + text[-8:]


def percent(part: float | int | None, whole: float | int | None) -> int:
    """`part` of `whole` as a whole percent from 0 to 100 (0 when there is no whole)."""
    if not whole or part is None:
        return 0
    return max(0, min(100, round(100 * float(part) / float(whole))))


def ago(moment: datetime | None, now: datetime) -> str:
    """How long before `now` a moment was: '12 min ago', 'in 3 min', '—'."""
    if moment is None:
        return "—"
    delta: timedelta = now - moment
    seconds = delta.total_seconds()
    return f"{duration(seconds)} ago" if seconds >= 0 else f"in {duration(-seconds)}"


class PageRenderer:
    """Renders the console's pages from the packaged templates, autoescaping everything."""

    def __init__(self, *, directory: Path = PAGES_DIR) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(directory),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(FILTERS)
        self.env.filters.update(duration=duration, stamp=stamp, tail_id=tail_id)
        self.env.globals.update(percent=percent, ago=ago)
        for name in self.env.list_templates(extensions=["j2"]):
            self.env.get_template(name)  # compile every page now: a broken one fails at start

    def render(self, template: str, context: dict[str, Any]) -> str:
        """The page `template` rendered with `context`."""
        return self.env.get_template(template).render(context)
