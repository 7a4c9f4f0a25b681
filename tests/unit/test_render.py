import json

import pytest

from bridge.events.vocabulary import EVENT_TYPES
from bridge.rendering import (
    TEMPLATES_BY_CHANNEL,
    Renderer,
    TemplateProblem,
    clip,
    http_url,
    mrkdwn,
    packaged_templates_dir,
    progress_bar,
    short_id,
    status_label,
    template_context,
)
from bridge.rendering.samples import sample_context, sample_event, sample_job

ALL_TEMPLATES = sorted({name for names in TEMPLATES_BY_CHANNEL.values() for name in names})


@pytest.fixture(scope="module")
def packaged():
    return Renderer()


def write(folder, name, text):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_packaged_templates_dir_holds_every_channel_template():
    folder = packaged_templates_dir()

    assert all((folder / name).is_file() for name in ALL_TEMPLATES)


def test_renderer_check_passes_for_every_packaged_template(packaged):
    assert packaged.check(ALL_TEMPLATES) == []


def test_renderer_override_replaces_one_file_and_keeps_the_rest(tmp_path):
    write(tmp_path, "slack/message.txt.j2", "Job {{ job.id | short_id }} is {{ job.status }}")
    renderer = Renderer(override_dir=tmp_path)
    context = sample_context("job.processing")

    assert renderer.render("slack/message.txt.j2", context) == "Job 3f1c2b9a is processing"
    assert "Product photo job 3f1c2b9a" in renderer.render("slack/event.txt.j2", context)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("slack/message.txt.j2", "{{ job.status }} {{ foo }}"),
        ("slack/message.json.j2", "[{{ foo | json }}]"),
        ("email/summary.html.j2", "<p>{{ foo }}</p>"),
    ],
)
def test_renderer_check_names_the_broken_override_and_the_undefined_name(tmp_path, name, text):
    path = write(tmp_path, name, text)

    problems = Renderer(override_dir=tmp_path).check(ALL_TEMPLATES)

    assert problems == [f"{path}: 'foo' is undefined (line 1)"]


def test_renderer_check_names_the_included_partial_that_broke(tmp_path):
    path = write(tmp_path, "email/_items.txt.j2", "line one\n{{ item.nope.deeper }}\n")

    problems = Renderer(override_dir=tmp_path).check(["email/summary.txt.j2"])

    assert len(problems) == 1
    assert problems[0].startswith(f"{path}: ")
    assert "(line 2)" in problems[0]


def test_renderer_check_reports_json_that_does_not_parse(tmp_path):
    write(tmp_path, "slack/event.json.j2", '[{"text": {{ type }}}]')  # forgot `| json`

    [problem] = Renderer(override_dir=tmp_path).check(["slack/event.json.j2"])

    assert "slack/event.json.j2: not valid JSON" in problem


def test_renderer_check_reports_an_unknown_template(packaged):
    assert packaged.check(["slack/nope.txt.j2"]) == [
        "templates/slack/nope.txt.j2: template not found"
    ]


def test_renderer_syntax_error_fails_at_start_naming_the_file(tmp_path):
    path = write(tmp_path, "email/event.txt.j2", "ok\n{% if job.status %}never closed\n")

    with pytest.raises(TemplateProblem) as failure:
        Renderer(override_dir=tmp_path)

    [problem] = failure.value.problems
    assert problem.startswith(f"{path}:")
    assert "endif" in problem


def test_renderer_autoescapes_html_templates_only(tmp_path):
    write(tmp_path, "x/page.html.j2", "<p>{{ value }}</p>")
    write(tmp_path, "x/page.txt.j2", "{{ value }}")
    renderer = Renderer(override_dir=tmp_path)
    value = {"value": "<b>&</b>"}

    assert renderer.render("x/page.html.j2", value) == "<p>&lt;b&gt;&amp;&lt;/b&gt;</p>"
    assert renderer.render("x/page.txt.j2", value) == "<b>&</b>"


def test_renderer_html_email_escapes_upstream_text(packaged):
    context = sample_context("job.partially_completed")

    html = packaged.render("email/summary.html.j2", context)

    assert "&#34;packaging only&#34; &lt;box&gt; &amp; tape" in html
    assert "<box>" not in html


HOSTILE = '"><img src=x onerror=alert(1)><script>x</script>'


def _hostile_context(event_type):
    """An event whose client- and upstream-given strings are all markup."""
    job = sample_job()
    for item in job["items"]:
        item.update(external_id=HOSTILE, error_code=HOSTILE, error_message=HOSTILE)
    event = sample_event(event_type)
    event["data"].update(account=HOSTILE, metadata={HOSTILE: HOSTILE})
    if event["data"].get("item"):
        event["data"]["item"].update(external_id=HOSTILE, error_message=HOSTILE)
    return template_context(payload=event, job=job, public_url=None)


@pytest.mark.parametrize("event_type", ["item.failed", "item.completed", "job.completed"])
@pytest.mark.parametrize("name", ["email/summary.html.j2", "email/event.html.j2"])
def test_renderer_html_email_escapes_what_the_shared_macros_return(packaged, name, event_type):
    # The macros live in a plain-text template; Jinja marks what they return as safe in an HTML
    # one, so an external id (the client's SKU) went into the email, and an alt="" attribute, raw.
    html = packaged.render(name, _hostile_context(event_type))

    assert "<img src=x" not in html and "<script>" not in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html


def test_renderer_slack_link_text_cannot_come_from_the_result_url(packaged):
    # In Slack's <url|text> the first "|" starts the text: a result_url holding one chose it.
    event = sample_event("item.completed")
    event["data"]["item"]["result_url"] = "https://cdn.example.com/a.png|Your account is locked"
    context = template_context(payload=event, job=None, public_url=None)

    text = packaged.render_json("slack/event.json.j2", context)[0]["text"]["text"]

    assert "<https://cdn.example.com/a.png%7CYour account is locked|Result image>" in text


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_renderer_slack_message_is_block_kit_for_every_event_type(packaged, event_type):
    blocks = packaged.render_json("slack/message.json.j2", sample_context(event_type))

    assert isinstance(blocks, list) and 0 < len(blocks) <= 50
    assert all(isinstance(block, dict) and "type" in block for block in blocks)


@pytest.mark.parametrize(
    ("percent", "width", "expected"),
    [(0, 10, "░" * 10), (100, 10, "█" * 10), (35, 20, "█" * 7 + "░" * 13), (150, 4, "████")],
)
def test_progress_bar(percent, width, expected):
    assert progress_bar(percent, width) == expected


@pytest.mark.parametrize(
    ("value", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("exactly10!", 10, "exactly10!"),
        ("much too long", 5, "much…"),
        (None, 3, ""),
    ],
)
def test_clip(value, limit, expected):
    assert clip(value, limit) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("a < b & c > d", "a &lt; b &amp; c &gt; d"), ("*bold*", "*bold*"), (None, "")],
)
def test_mrkdwn(value, expected):
    assert mrkdwn(value) == expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("partially_completed", "Partially completed"),
        ("queued", "Queued"),
        (None, "Unknown"),
        ("on_hold", "On hold"),  # a status the upstream may add one day
    ],
)
def test_status_label(status, expected):
    assert status_label(status) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://cdn.example.com/a.png", "https://cdn.example.com/a.png"),
        ("HTTP://x.test/", "HTTP://x.test/"),
        ("javascript:alert(1)", ""),
        (None, ""),
    ],
)
def test_http_url(value, expected):
    assert http_url(value) == expected


def test_short_id():
    assert short_id("3f1c2b9a-7d4e-4c1a") == "3f1c2b9a"


def _job(statuses, **summary):
    items = [{"id": str(n), "status": s} for n, s in enumerate(statuses)]
    return {
        "id": "j",
        "status": "processing",
        "total_items": len(statuses),
        "items": items,
    } | summary


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        (
            _job(["completed", "failed", "queued", "processing"]),
            {"total": 4, "done": 1, "failed": 1, "cancelled": 0, "pending": 2, "percent": 50},
        ),
        (
            _job(["completed", "cancelled", "cancelled"]),
            {"total": 3, "done": 1, "failed": 0, "cancelled": 2, "pending": 0, "percent": 100},
        ),
        (  # no items listed yet: the upstream's counters speak
            {
                "id": "j",
                "status": "processing",
                "total_items": 20,
                "completed_items": 5,
                "failed_items": 1,
            },
            {"total": 20, "done": 5, "failed": 1, "cancelled": 0, "pending": 14, "percent": 30},
        ),
        (None, {"total": 0, "done": 0, "failed": 0, "cancelled": 0, "pending": 0, "percent": 0}),
    ],
)
def test_template_context_counts(job, expected):
    payload = {"type": "job.processing", "timestamp": "t", "data": {"job_id": "j", "job": None}}

    counts = template_context(payload=payload, job=job, public_url=None)["counts"]

    assert {k: counts[k] for k in expected} == expected


def test_template_context_falls_back_to_the_event_without_a_stored_job():
    payload = sample_event("item.failed")

    context = template_context(payload=payload, job=None, public_url="https://b.test/")

    assert context["job"]["id"] == payload["data"]["job_id"]
    assert context["job"]["status"] == "processing"
    assert context["failed_items"] == [payload["data"]["item"]]
    assert context["bridge_url"] == "https://b.test"


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_sample_event_has_the_contract_shape(event_type):
    event = sample_event(event_type)

    assert set(event) == {"type", "timestamp", "data"}
    assert {
        "event_id", "watch_id", "job_id", "account", "sequence", "metadata",
        "previous_status", "job", "item",
    } <= set(event["data"])  # fmt: skip
    assert (event["data"]["item"] is not None) == event_type.startswith("item.")
    assert ("error" in event["data"]) == event_type.startswith("watch.")
    json.dumps(event)


def test_sample_job_has_20_items_and_some_failures():
    job = sample_job()

    assert len(job["items"]) == job["total_items"] == 20
    assert 0 < job["failed_items"] < 20
    assert all(i["error_message"] for i in job["items"] if i["status"] == "failed")
