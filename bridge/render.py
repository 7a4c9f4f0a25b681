"""Renderer: the one Jinja environment every message people read comes from, built once at start.

Templates live in the packaged `templates/` and may be overridden file by file from `templates.dir`.
Undefined names fail loudly (StrictUndefined); only `.html.j2` templates autoescape. `check()` renders
templates against sample events so a broken override fails in `check-config`, not at 3 a.m.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2

from bridge.events.snapshot import JOB_FINAL
from bridge.events.vocabulary import SUMMARY_EVENTS

TEMPLATES_BY_CHANNEL: dict[str, list[str]] = {
    "webhook": [],
    "slack": [
        "slack/message.json.j2",
        "slack/message.txt.j2",
        "slack/item_failed.json.j2",
        "slack/item_failed.txt.j2",
        "slack/final_failure.json.j2",
        "slack/final_failure.txt.j2",
    ],
    "slack_webhook": ["slack/event.json.j2", "slack/event.txt.j2"],
    "email": [
        "email/subject.txt.j2",
        "email/summary.txt.j2",
        "email/summary.html.j2",
        "email/event.txt.j2",
        "email/event.html.j2",
    ],
}

# Events a Slack channel also broadcasts from the job's thread to the channel.
SLACK_BROADCAST_EVENTS = frozenset({"job.failed", "watch.failed"})


# Templates rendered only for some events; check() renders them against those samples only.
_USED_ON: dict[str, frozenset[str]] = {
    "slack/item_failed.json.j2": frozenset({"item.failed"}),
    "slack/item_failed.txt.j2": frozenset({"item.failed"}),
    "slack/final_failure.json.j2": SLACK_BROADCAST_EVENTS,
    "slack/final_failure.txt.j2": SLACK_BROADCAST_EVENTS,
    "email/summary.txt.j2": SUMMARY_EVENTS,
    "email/summary.html.j2": SUMMARY_EVENTS,
}

_STATUS_LABELS = {
    None: "Unknown",
    "queued": "Queued",
    "processing": "Processing",
    "completed": "Completed",
    "partially_completed": "Partially completed",
    "failed": "Failed",
    "cancelled": "Cancelled",
}
_STATUS_EMOJI = {
    "queued": ":hourglass_flowing_sand:",
    "processing": ":gear:",
    "completed": ":white_check_mark:",
    "partially_completed": ":warning:",
    "failed": ":x:",
    "cancelled": ":no_entry_sign:",
}


class TemplateProblem(Exception):
    """One or more templates cannot be used; `problems` names each file and what is wrong."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def packaged_templates_dir() -> Path:
    """The templates shipped with the bridge: inside the wheel, else the source tree's `templates/`."""
    inside = Path(__file__).parent / "templates"
    if inside.is_dir():
        return inside
    return Path(__file__).resolve().parent.parent / "templates"


class Renderer:
    """One Jinja environment (override folder first, then the packaged templates), compiled up front."""

    def __init__(self, *, override_dir: Path | None = None) -> None:
        self._override_dir = override_dir
        packaged = packaged_templates_dir()
        search = [override_dir, packaged] if override_dir is not None else [packaged]
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(p) for p in search]),
            undefined=jinja2.StrictUndefined,
            autoescape=lambda name: name is not None and name.endswith(".html.j2"),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=False,
            cache_size=-1,  # never evict: everything is compiled once, below
        )
        self._env.filters.update(FILTERS)
        problems = []
        for name in self._env.list_templates(filter_func=lambda n: n.endswith(".j2")):
            try:
                self._env.get_template(name)
            except jinja2.TemplateSyntaxError as exc:
                problems.append(f"{self.display(name)}:{exc.lineno}: {exc.message}")
        if problems:
            raise TemplateProblem(problems)

    def display(self, name: str) -> str:
        """Where template `name` comes from, as an operator would look for it."""
        if self._override_dir is not None and (self._override_dir / name).is_file():
            return str(self._override_dir / name)
        return f"templates/{name}"

    def render(self, name: str, context: Mapping[str, Any]) -> str:
        """Render template `name`; raise TemplateProblem naming the file when it cannot."""
        try:
            return self._env.get_template(name).render(context)
        except jinja2.TemplateNotFound as exc:
            if exc.name == name:
                raise TemplateProblem([f"templates/{name}: template not found"]) from None
            problem = f"{self.display(name)}: uses {exc.name!r}, which does not exist"
            raise TemplateProblem([problem]) from None
        except Exception as exc:  # a template is code an operator wrote: report any failure
            raise TemplateProblem([self._describe(name, exc)]) from None

    def render_json(self, name: str, context: Mapping[str, Any]) -> Any:
        """Render a template whose output is JSON (Block Kit) and parse it."""
        text = self.render(name, context)
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno} column {exc.colno}"
            raise TemplateProblem(
                [f"{self.display(name)}: not valid JSON ({where}: {exc.msg})"]
            ) from None

    def check(self, names: Iterable[str]) -> list[str]:
        """Render each template against every sample context; one problem line per broken template."""
        from bridge.samples import sample_contexts  # samples build on this module's contexts

        problems: list[str] = []
        contexts = sample_contexts()
        for name in dict.fromkeys(names):
            render = self.render_json if name.endswith(".json.j2") else self.render
            used_on = _USED_ON.get(name)
            for context in contexts:
                if used_on is not None and context["type"] not in used_on:
                    continue
                try:
                    render(name, context)
                except TemplateProblem as exc:
                    problems.extend(exc.problems)
                    break
        return problems

    def _describe(self, name: str, exc: Exception) -> str:
        """`file: message (line N)`, naming the innermost template (an include) where it failed."""
        where, line = self.display(name), None
        tb: TracebackType | None = exc.__traceback__
        while tb is not None:
            filename = tb.tb_frame.f_code.co_filename
            if filename.endswith(".j2"):
                where, line = _display_path(filename, self._override_dir), tb.tb_lineno
            tb = tb.tb_next
        detail = exc.message if isinstance(exc, jinja2.TemplateError) and exc.message else None
        detail = detail or f"{type(exc).__name__}: {exc}"
        return f"{where}: {detail}" + (f" (line {line})" if line else "")


def _display_path(filename: str, override_dir: Path | None) -> str:
    path = Path(filename)
    if override_dir is not None and path.is_relative_to(override_dir):
        return filename
    try:
        return f"templates/{path.relative_to(packaged_templates_dir()).as_posix()}"
    except ValueError:
        return filename


# ----- what templates see -------------------------------------------------------------------------


def template_context(
    *, payload: Mapping[str, Any], job: Mapping[str, Any] | None, public_url: str | None
) -> dict[str, Any]:
    """The names every template can use: the event as CONTRACT section 4, the latest job, counts."""
    data: Mapping[str, Any] = payload.get("data") or {}
    view = _job_view(data, job)
    items = view["items"]
    total = view["total_items"] or len(items)
    if items:
        done = sum(1 for i in items if i.get("status") == "completed")
        failed = sum(1 for i in items if i.get("status") == "failed")
    else:
        done, failed = view["completed_items"], view["failed_items"]
    cancelled = sum(1 for i in items if i.get("status") == "cancelled")
    finished = done + failed + cancelled
    return {
        "event": payload,
        "type": payload.get("type", ""),
        "timestamp": payload.get("timestamp", ""),
        "data": data,
        "item": data.get("item"),
        "job": view,
        "counts": {
            "total": total,
            "done": done,
            "failed": failed,
            "cancelled": cancelled,
            "pending": max(0, total - finished),
            "percent": min(100, round(100 * finished / total)) if total else 0,
            "credits_used": view["credits_used"],
        },
        "failed_items": [i for i in items if i.get("status") == "failed"],
        "final": view["status"] in JOB_FINAL,
        "bridge_url": (public_url or "").rstrip("/"),
    }


def _job_view(data: Mapping[str, Any], job: Mapping[str, Any] | None) -> dict[str, Any]:
    """The latest stored job, else what the event itself says about it; always the same keys."""
    source: Mapping[str, Any] = job or data.get("job") or {}
    items = list(job.get("items") or []) if job else []
    if not items and data.get("item"):
        items = [data["item"]]
    return {
        "id": source.get("id") or data.get("job_id") or "",
        "status": source.get("status"),
        "total_items": source.get("total_items") or 0,
        "completed_items": source.get("completed_items") or 0,
        "failed_items": source.get("failed_items") or 0,
        "credits_used": source.get("credits_used") or 0,
        "items": items,
    }


# ----- filters ------------------------------------------------------------------------------------


def status_label(status: str | None) -> str:
    """'partially_completed' -> 'Partially completed'; new upstream values stay readable."""
    if status in _STATUS_LABELS:
        return _STATUS_LABELS[status]
    return str(status).replace("_", " ").capitalize()


def status_emoji(status: str | None) -> str:
    """A Slack emoji code for a status."""
    return _STATUS_EMOJI.get(status or "", ":grey_question:")


def progress_bar(percent: int | float, width: int = 20) -> str:
    """A bar of block characters, e.g. '██████░░░░' for 60 out of 100."""
    filled = max(0, min(width, round(width * float(percent) / 100)))
    return "█" * filled + "░" * (width - filled)


def clip(value: Any, limit: int) -> str:
    """Cut text to at most `limit` characters, marking the cut with an ellipsis."""
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def short_id(value: Any) -> str:
    """The first 8 characters of an id, as people quote job ids."""
    return str(value or "")[:8]


def mrkdwn(value: Any) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    text = "" if value is None else str(value)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_json(value: Any) -> str:
    """JSON for templates that render JSON, keeping non-ASCII characters readable."""
    return json.dumps(value, ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, jinja2.Undefined):
        return str(value)  # StrictUndefined raises here, naming what was undefined
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def http_url(value: Any) -> str:
    """The value if it is an http(s) URL, else '' (never a javascript: link in an email)."""
    text = "" if value is None else str(value).strip()
    return text if text.lower().startswith(("http://", "https://")) else ""


FILTERS = {
    "status_label": status_label,
    "status_emoji": status_emoji,
    "progress_bar": progress_bar,
    "clip": clip,
    "short_id": short_id,
    "mrkdwn": mrkdwn,
    "json": to_json,
    "http_url": http_url,
}
