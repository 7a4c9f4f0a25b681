"""compose(...): one multipart email, threaded by Message-ID, In-Reply-To and References; the
Message-IDs of a job's thread; the wire policy every email is sent with."""

from __future__ import annotations

import email.policy
import re
from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
# On the wire: CRLF, and headers left unfolded up to RFC 5322's 998 characters, so a long
# Message-ID or References stays on one line for the simplest thread-matching client.
WIRE_POLICY = email.policy.SMTP.clone(max_line_length=998)


def root_message_id(*, channel: str, job_id: str, domain: str) -> str:
    """The Message-ID of a job's first email on `channel`; the same on every host and restart."""
    return f"<job.{id_part(job_id)}.{id_part(channel)}@{domain}>"


def reply_message_id(*, channel: str, job_id: str, event_id: str, domain: str) -> str:
    """The Message-ID of a later email: unique per event, and the same when the event is retried."""
    return f"<job.{id_part(job_id)}.{id_part(channel)}.{id_part(event_id)}@{domain}>"


def id_part(value: str) -> str:
    """`value` as it may stand inside a Message-ID."""
    return _UNSAFE_ID_CHARS.sub("-", value).strip("-.") or "x"


def compose(
    *,
    subject: str,
    text: str,
    html: str,
    sender: str,
    to: Sequence[str],
    message_id: str,
    root_id: str | None,
    date: datetime,
    attachments: Sequence[tuple[str, str]] = (),
) -> EmailMessage:
    """One multipart/alternative email; `root_id` makes it a reply in the job's thread;
    `attachments` (file name, CSV text) make it multipart/mixed."""
    mail = EmailMessage()
    mail["Subject"] = " ".join(subject.split())  # one line, whatever the template left in it
    mail["From"] = sender
    mail["To"] = ", ".join(to)
    mail["Date"] = format_datetime(date)
    mail["Message-ID"] = message_id
    if root_id is not None:
        mail["In-Reply-To"] = root_id
        mail["References"] = root_id
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a machine
    mail["X-Auto-Response-Suppress"] = "All"  # the same, for Exchange
    # quoted-printable keeps the body 7-bit clean whatever the server's 8BITMIME support.
    mail.set_content(text, cte="quoted-printable")
    mail.add_alternative(html, subtype="html", cte="quoted-printable")
    for filename, content in attachments:
        mail.add_attachment(content.encode(), maintype="text", subtype="csv", filename=filename)
    return mail
