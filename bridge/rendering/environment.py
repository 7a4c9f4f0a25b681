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

from bridge.events.vocabulary import IMPORT_EVENT_TYPES, IMPORT_SUMMARY_EVENTS, SUMMARY_EVENTS
from bridge.rendering.filters import FILTERS
from bridge.rendering.import_samples import sample_import_contexts
from bridge.rendering.samples import sample_contexts

TEMPLATES_BY_CHANNEL: dict[str, list[str]] = {
    "webhook": [],
    "slack": [
        "slack/message.json.j2",
        "slack/message.txt.j2",
        "slack/item_failed.json.j2",
        "slack/item_failed.txt.j2",
        "slack/final_failure.json.j2",
        "slack/final_failure.txt.j2",
        "slack/import.json.j2",
        "slack/import.txt.j2",
        "slack/import_failures.json.j2",
        "slack/import_failures.txt.j2",
        "slack/import_final_failure.json.j2",
        "slack/import_final_failure.txt.j2",
    ],
    "slack_webhook": ["slack/event.json.j2", "slack/event.txt.j2"],
    "email": [
        "email/subject.txt.j2",
        "email/summary.txt.j2",
        "email/summary.html.j2",
        "email/event.txt.j2",
        "email/event.html.j2",
        "email/import_subject.txt.j2",
        "email/import_summary.txt.j2",
        "email/import_summary.html.j2",
        "email/import_event.txt.j2",
        "email/import_event.html.j2",
    ],
}

# Events a Slack channel also broadcasts from the job's thread to the channel.
SLACK_BROADCAST_EVENTS = frozenset({"job.failed", "watch.failed"})
# Import statuses a Slack channel broadcasts from the import's thread when the import ends so.
SLACK_IMPORT_BROADCAST = frozenset({"partially_completed", "failed"})


def is_import_template(name: str) -> bool:
    """Templates about an import (`slack/import*.j2`, `email/import*.j2`): they see
    `bridge.rendering.import_context`, not an event's job."""
    return name.rpartition("/")[2].startswith("import")


# Templates rendered only for some events; check() renders them against those samples only.
_USED_ON: dict[str, frozenset[str]] = {
    "slack/item_failed.json.j2": frozenset({"item.failed"}),
    "slack/item_failed.txt.j2": frozenset({"item.failed"}),
    "slack/final_failure.json.j2": SLACK_BROADCAST_EVENTS,
    "slack/final_failure.txt.j2": SLACK_BROADCAST_EVENTS,
    "email/summary.txt.j2": SUMMARY_EVENTS,
    "email/summary.html.j2": SUMMARY_EVENTS,
    "slack/import_final_failure.json.j2": frozenset(f"import.{s}" for s in SLACK_IMPORT_BROADCAST),
    "slack/import_final_failure.txt.j2": frozenset(f"import.{s}" for s in SLACK_IMPORT_BROADCAST),
    "email/import_summary.txt.j2": IMPORT_SUMMARY_EVENTS,
    "email/import_summary.html.j2": IMPORT_SUMMARY_EVENTS,
    "email/import_event.txt.j2": frozenset(IMPORT_EVENT_TYPES),
    "email/import_event.html.j2": frozenset(IMPORT_EVENT_TYPES),
}


class TemplateProblem(Exception):
    """One or more templates cannot be used; `problems` names each file and what is wrong."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def packaged_templates_dir() -> Path:
    """The templates shipped with the bridge: inside the wheel, else the source tree's `templates/`."""
    inside = Path(__file__).parent.parent / "templates"
    if inside.is_dir():
        return inside
    return Path(__file__).resolve().parent.parent.parent / "templates"


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
        problems: list[str] = []
        job_contexts, import_contexts = sample_contexts(), sample_import_contexts()
        for name in dict.fromkeys(names):
            render = self.render_json if name.endswith(".json.j2") else self.render
            used_on = _USED_ON.get(name)
            for context in import_contexts if is_import_template(name) else job_contexts:
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
