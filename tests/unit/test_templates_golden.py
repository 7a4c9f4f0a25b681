"""Golden files: each packaged template rendered for fixed sample events, compared byte for byte.

After an intended change to a template, regenerate with `UPDATE_GOLDEN=1 pytest tests/unit/test_templates_golden.py`
and review the diff of tests/golden/ like any other code change.
"""

import json
import os
from pathlib import Path

import pytest

from bridge.rendering import TEMPLATES_BY_CHANNEL, Renderer, is_import_template
from bridge.rendering.import_samples import sample_import_context
from bridge.rendering.samples import sample_context

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

CASES = [
    ("slack/message.json.j2", "job.queued"),
    ("slack/message.json.j2", "item.failed"),
    ("slack/message.json.j2", "job.failed"),
    ("slack/message.txt.j2", "job.processing"),
    ("slack/item_failed.json.j2", "item.failed"),
    ("slack/item_failed.txt.j2", "item.failed"),
    ("slack/final_failure.json.j2", "job.failed"),
    ("slack/final_failure.json.j2", "watch.failed"),
    ("slack/final_failure.txt.j2", "watch.failed"),
    ("slack/event.json.j2", "item.completed"),
    ("slack/event.json.j2", "watch.expired"),
    ("slack/event.txt.j2", "job.cancelled"),
    ("email/subject.txt.j2", "job.completed"),
    ("email/summary.txt.j2", "job.partially_completed"),
    ("email/summary.html.j2", "job.partially_completed"),
    ("email/summary.txt.j2", "watch.failed"),
    ("email/event.txt.j2", "item.failed"),
    ("email/event.html.j2", "item.failed"),
    ("email/event.html.j2", "job.completed"),
    ("email/event.txt.j2", "watch.expired"),
    ("slack/import.json.j2", "import.progress"),
    ("slack/import.json.j2", "import.partially_completed"),
    ("slack/import.json.j2", "import.stalled"),
    ("slack/import.txt.j2", "item.failed"),
    ("slack/import_failures.json.j2", "item.failed"),
    ("slack/import_failures.txt.j2", "item.failed"),
    ("slack/import_final_failure.json.j2", "import.failed"),
    ("slack/import_final_failure.txt.j2", "import.partially_completed"),
    ("email/import_subject.txt.j2", "import.completed"),
    ("email/import_summary.txt.j2", "import.partially_completed"),
    ("email/import_summary.html.j2", "import.partially_completed"),
    ("email/import_event.txt.j2", "import.progress"),
    ("email/import_event.html.j2", "import.stalled"),
]


@pytest.fixture(scope="module")
def renderer():
    return Renderer()


def golden_path(name, event_type):
    """tests/golden/slack/message/item.failed.json for ("slack/message.json.j2", "item.failed")."""
    stem, ext = name.removesuffix(".j2").rsplit(".", 1)
    return GOLDEN / stem / f"{event_type}.{ext}"


def rendered(renderer, name, event_type):
    if is_import_template(name):
        # 23 failures found since the last reply: a reply lists 20 of them, then "and 3 more".
        context = sample_import_context(event_type, failures=23 if "failures" in name else 4)
    else:
        context = sample_context(event_type)
    if name.endswith(".json.j2"):
        value = renderer.render_json(name, context)
        return json.dumps(value, indent=2, ensure_ascii=False) + "\n"
    return renderer.render(name, context) + "\n"


@pytest.mark.parametrize(("name", "event_type"), CASES)
def test_template_matches_its_golden_file(renderer, name, event_type):
    path = golden_path(name, event_type)
    actual = rendered(renderer, name, event_type)
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert path.is_file(), f"no golden file {path}; run with UPDATE_GOLDEN=1 to write it"
    assert actual == path.read_text(encoding="utf-8")


def test_template_golden_cases_cover_every_channel_template():
    covered = {name for name, _ in CASES}

    assert covered == {name for names in TEMPLATES_BY_CHANNEL.values() for name in names}


# The same messages with the Slack app configured: its "Show failures" and "Mute" buttons.
BUTTON_CASES = [
    ("slack/message.json.j2", "job.processing"),
    ("slack/import.json.j2", "import.progress"),
]


@pytest.mark.parametrize(("name", "event_type"), BUTTON_CASES)
def test_template_with_buttons_matches_its_golden_file(renderer, name, event_type):
    stem = name.removesuffix(".json.j2").rsplit("/", 1)[-1]
    path = GOLDEN / "slack" / "buttons" / f"{stem}.{event_type}.json"
    if is_import_template(name):
        context = sample_import_context(event_type, failures=4)
    else:
        context = sample_context(event_type)
    actual = json.dumps(
        renderer.render_json(name, {**context, "buttons": True}), indent=2, ensure_ascii=False
    )
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual + "\n", encoding="utf-8")
    assert path.is_file(), f"no golden file {path}; run with UPDATE_GOLDEN=1 to write it"
    assert actual + "\n" == path.read_text(encoding="utf-8")
