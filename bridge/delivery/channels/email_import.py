"""Email, imports: every email about one import, for one address list, in one thread.

`mode: summary` sends one email when the import ends (import.completed, partially_completed,
failed or cancelled), its failed images attached as failures.csv; `mode: events` one email per
event: the import's own (import_event templates) and its jobs' (the job's event templates), all
under the import's subject and root Message-ID, which (channel, import, addresses) decide.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from email.message import EmailMessage
from functools import partial
from typing import Any, Literal

from bridge.delivery.channels import ImportFailures, Message, SendError, SendResult, StateStore
from bridge.delivery.channels.email_message import compose, id_part
from bridge.events.failures_csv import failures_csv
from bridge.events.vocabulary import IMPORT_SUMMARY_EVENTS
from bridge.rendering import Renderer, TemplateProblem, import_context, template_context

log = logging.getLogger(__name__)

LISTED = 20  # failed images a summary lists in its body; all of them are in the CSV
CSV_NAME = "failures.csv"


def import_message_id(
    *, channel: str, import_id: str, to: Sequence[str], domain: str, event_id: str | None = None
) -> str:
    """The Message-ID of an import's first email to these addresses on `channel` (no
    `event_id`), or of a later one (unique per event, the same when the event is retried)."""
    who = hashlib.sha256(",".join(sorted(a.lower() for a in to)).encode()).hexdigest()[:12]
    event = f".{id_part(event_id)}" if event_id is not None else ""
    return f"<import.{id_part(import_id)}.{id_part(channel)}.{who}{event}@{domain}>"


class EmailImports:
    """The import side of an email channel: built by `EmailChannel`, which hands it `deliver`."""

    def __init__(
        self,
        *,
        name: str,
        sender: str,
        to: Sequence[str],
        renderer: Renderer,
        mode: Literal["summary", "events"],
        domain: str,
        state: StateStore | None,
        public_url: str | None,
        failures: ImportFailures | None,
        now: Callable[[], datetime],
        deliver: Callable[[EmailMessage], Awaitable[str]],
    ) -> None:
        self._name = name
        self._sender = sender
        self._to = tuple(to)
        self._renderer = renderer
        self._mode = mode
        self._domain = domain
        self._state = state
        self._public_url = public_url
        self._failures = failures
        self._now = now
        self._deliver = deliver

    async def send(self, message: Message) -> SendResult:
        """The import's summary, or this event's email, in the import's thread."""
        view = message.import_view
        if view is None or message.import_id is None:
            return SendResult(response_excerpt="skipped: the import is no longer stored")
        summary = message.event_type in IMPORT_SUMMARY_EVENTS and self._mode == "summary"
        if self._mode == "summary" and not summary:
            return SendResult(response_excerpt="skipped: summary mode emails when the import ends")
        context = import_context(view=view, payload=message.payload, public_url=self._public_url)
        attachments: list[tuple[str, str]] = []
        if summary:
            listed, csv_text, count = await self._failed_images(message.import_id)
            context = {**context, "failures": listed, "more": count - len(listed)}
            if count:
                attachments.append((CSV_NAME, csv_text))
        subject, text, html = self._render(message, context)
        ids = partial(
            import_message_id,
            channel=self._name,
            import_id=message.import_id,
            to=self._to,
            domain=self._domain,
        )
        root = ids()
        is_root = await self._claims_root(message, root)
        mail = compose(
            subject=subject,
            text=text,
            html=html,
            sender=self._sender,
            to=self._to,
            message_id=root if is_root else ids(event_id=message.event_id),
            root_id=None if is_root else root,
            date=self._now(),
            attachments=attachments,
        )
        reply = await self._deliver(mail)
        log.info(
            "import email sent",
            extra={
                "channel": self._name,
                "event_id": message.event_id,
                "import_id": message.import_id,
            },
        )
        return SendResult(response_excerpt=reply[:200])

    def _render(self, message: Message, context: Mapping[str, Any]) -> tuple[str, str, str]:
        """Subject, text and HTML: the import's own templates, or the job's event templates
        (with the import's subject) for a job's event told inside the import."""
        try:
            subject = self._renderer.render("email/import_subject.txt.j2", context)
            if message.event_type.startswith("import."):
                kind = "import_summary" if self._mode == "summary" else "import_event"
                job_context: Mapping[str, Any] = context
            else:
                kind = "event"
                job_context = {
                    **template_context(
                        payload=message.payload, job=message.job, public_url=self._public_url
                    ),
                    "import": context["import"],
                    "console_url": context["console_url"],
                }
            text = self._renderer.render(f"email/{kind}.txt.j2", job_context)
            html = self._renderer.render(f"email/{kind}.html.j2", job_context)
        except TemplateProblem as exc:
            raise SendError(f"template problem: {exc}", permanent=True) from None
        return subject, text, html

    async def _failed_images(self, import_id: str) -> tuple[list[dict[str, Any]], str, int]:
        """The first failed images (for the body), all of them as CSV, and how many there are."""
        if self._failures is None:
            return [], "", 0
        rows: list[Any] = []
        try:
            async for batch in self._failures.iter_failures(import_id=import_id):
                rows += batch
        except Exception as exc:  # the store is the database: any failure is worth a retry
            raise SendError(f"import failures unavailable: {type(exc).__name__}") from None
        listed = [
            {
                "external_id": r.external_id,
                "job_id": r.job_id,
                "item_id": r.item_id,
                "error_code": r.error_code,
                "error_message": r.error_message,
            }
            for r in rows[:LISTED]
        ]
        return listed, failures_csv(rows), len(rows)

    async def _claims_root(self, message: Message, root: str) -> bool:
        """True when this event's email opens the import's thread (claimed before sending, as
        `EmailChannel` does for a job: a retried event keeps its claim)."""
        if self._state is None:
            return self._mode == "summary"
        key = f"email:{self._name}:import:{root}"
        try:
            held = await self._state.claim_state(key, {"root_event_id": message.event_id})
        except Exception as exc:  # the store is the database: any failure is worth a retry
            raise SendError(f"channel state unavailable: {type(exc).__name__}") from None
        return held is None or held.get("root_event_id") == message.event_id
