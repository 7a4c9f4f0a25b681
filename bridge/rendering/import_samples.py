"""Sample imports: what check-config renders the import templates against, and what tests use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bridge.events.import_view import ImportRecord, import_event_payload, import_view
from bridge.events.rollup import Tally
from bridge.events.vocabulary import IMPORT_EVENT_TYPES, IMPORT_FINAL
from bridge.rendering.import_context import import_context
from bridge.rendering.samples import SAMPLE_PUBLIC_URL, sample_event

SAMPLE_IMPORT_ID = "imp_0194c3a1b2c3d4e5f60718293a4b5c6d"
_NOW = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
_CREATED = _NOW - timedelta(hours=3)
# (jobs: completed, partially_completed, failed, cancelled, active), images completed, failed
_SHAPES: dict[str, tuple[tuple[int, int, int, int, int], int, int]] = {
    "open": ((0, 0, 0, 0, 30), 0, 0),
    "running": ((9, 2, 1, 0, 18), 204, 16),
    "completed": ((30, 0, 0, 0, 0), 600, 0),
    "partially_completed": ((25, 4, 1, 0, 0), 571, 29),
    "failed": ((0, 0, 30, 0, 0), 0, 600),
    "cancelled": ((12, 1, 0, 17, 0), 251, 349),
}
_ERRORS = (
    ("product_not_detected", 'No product found: the photo shows "packaging only" <box> & tape.'),
    ("image_too_small", "Source image is 320x240; at least 1024 px on the short side is needed."),
    ("unsafe_content", "The image was refused by the content policy.\nUpload a different photo."),
    ("source_unreachable", '=HYPERLINK("http://evil.example") could not be downloaded (HTTP 403).'),
)


def sample_import_record(status: str = "running", *, stalled: bool = False) -> ImportRecord:
    """A 30-job, 600-image import of the Autumn catalog in `status`, its metadata awkward on purpose."""
    (done, partial, failed, cancelled, active), completed, failed_images = _SHAPES[status]
    finished = completed + failed_images
    ended = status in IMPORT_FINAL
    tally = Tally(
        status=status,
        closed=status != "open",
        expected_jobs=30,
        jobs={
            "total": 30,
            "active": active,
            "completed": done,
            "partially_completed": partial,
            "failed": failed,
            "cancelled": cancelled,
        },
        images_total=600,
        images_completed=completed,
        images_failed=failed_images,
        credits_used=completed,
        started=status != "open",
        progress_tenths=min(9, 10 * finished // 600),
        stalled=stalled,
        started_at=None if status == "open" else _CREATED + timedelta(minutes=5),
        last_finished_at=None if finished == 0 else _NOW - timedelta(minutes=2),
        finished_by_minute={str(int(_NOW.timestamp() // 60) - m): 2 for m in range(60)}
        if finished
        else {},
        ended_at=_NOW if ended else None,
    )
    return ImportRecord(
        id=SAMPLE_IMPORT_ID,
        client="shop",
        account="main",
        name="Autumn <catalog> & *friends* 2026",
        webhook_url="https://shop.example.com/hooks/imports",
        events=("import.*",),
        metadata={"season": "autumn", "owner": "<catalog-team> & co"},
        created_at=_CREATED,
        updated_at=_NOW,
        last_sequence=4,
        tally=tally,
    )


def sample_failures(count: int = 4) -> list[dict[str, Any]]:
    """`count` failed images of the sample import, as import_failures rows read."""
    return [
        {
            "external_id": f"sku-{n:04d}" if n % 5 else f"<b>sku-{n:04d}</b> & *bold*",
            "job_id": f"3f1c2b9a-7d4e-4c1a-9b2e-{n:012d}",
            "item_id": f"7c0e5d1a-0000-4000-8000-{n:012d}",
            "error_code": _ERRORS[n % len(_ERRORS)][0],
            "error_message": _ERRORS[n % len(_ERRORS)][1],
        }
        for n in range(1, count + 1)
    ]


_STATUS_OF = {
    "import.started": "running",
    "import.progress": "running",
    "import.stalled": "running",
    "import.resumed": "running",
    **{f"import.{s}": s for s in IMPORT_FINAL},
}


def sample_import_context(
    event_type: str = "import.progress",
    *,
    failures: int = 4,
    more: int = 0,
    public_url: str | None = SAMPLE_PUBLIC_URL,
) -> dict[str, Any]:
    """What an import template sees for `event_type` (an import event, or a job's event told
    inside the import), with `failures` failed images listed and `more` left out."""
    record = sample_import_record(
        _STATUS_OF.get(event_type, "running"), stalled=event_type == "import.stalled"
    )
    if event_type.startswith("import."):
        payload = import_event_payload(
            event_type=event_type, event_id="evt_sample", sequence=4, record=record, now=_NOW
        )
    else:
        payload = sample_event(event_type)
    return import_context(
        view=import_view(record, now=_NOW),
        payload=payload,
        public_url=public_url,
        failures=sample_failures(failures),
        more=more,
    )


def sample_import_contexts() -> list[dict[str, Any]]:
    """Every import event, a job's failure told inside its import, and the awkward cases: an
    import not yet started, no public URL, no failures, more failures than a reply lists."""
    contexts = [sample_import_context(t) for t in IMPORT_EVENT_TYPES]
    contexts.append(sample_import_context("item.failed", failures=20, more=17))
    contexts.append(sample_import_context("job.completed", failures=0, public_url=None))
    opened = import_context(
        view=import_view(sample_import_record("open"), now=_NOW),
        payload=sample_event("job.queued"),
        public_url=None,
    )
    return [*contexts, opened]
