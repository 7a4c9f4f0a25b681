"""Email: multipart text and HTML through aiosmtplib, every email about one job in one thread.

`mode: summary` sends one email when the job (or its watch) ends; `mode: events` one per routed
event. The first email of a job carries a root Message-ID derived from (channel, job); later ones
answer it with In-Reply-To/References under the same subject, so mail clients thread them.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import weakref
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from email.message import EmailMessage
from typing import Any, Literal

import aiosmtplib

from bridge.clock import utcnow
from bridge.delivery.channels import ImportFailures, Message, SendError, SendResult, StateStore
from bridge.delivery.channels.email_import import EmailImports
from bridge.delivery.channels.email_message import (
    WIRE_POLICY,
    compose,
    reply_message_id,
    root_message_id,
)
from bridge.delivery.failures import smtp_reply_is_permanent
from bridge.events.vocabulary import SUMMARY_EVENTS
from bridge.rendering import Renderer, TemplateProblem, template_context

log = logging.getLogger(__name__)


def is_summary_event(event_type: str) -> bool:
    """True for the events a summary-mode channel emails: a job's final status, a watch's end."""
    return event_type in SUMMARY_EVENTS


class EmailChannel:
    """Sends the job's emails to a fixed list of people through one SMTP server."""

    def __init__(
        self,
        *,
        name: str,
        host: str,
        port: int,
        sender: str,
        to: Sequence[str],
        renderer: Renderer,
        mode: Literal["summary", "events"] = "summary",
        starttls: bool = True,
        use_tls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 10.0,
        message_id_domain: str = "photo-bridge.local",
        state: StateStore | None = None,
        public_url: str | None = None,
        tls_context: ssl.SSLContext | None = None,
        now: Callable[[], datetime] = utcnow,
        failures: ImportFailures | None = None,
    ) -> None:
        if not to:
            raise ValueError("an email channel needs at least one recipient")
        self._name = name
        self._host = host
        self._port = port
        self._sender = sender
        self._to = tuple(to)
        self._renderer = renderer
        self._mode = mode
        self._starttls = starttls and not use_tls  # implicit TLS already encrypts
        self._use_tls = use_tls
        self._username = username
        self._password = password  # never logged, never in an error
        self._timeout_s = timeout_s
        self._domain = message_id_domain
        self._state = state
        self._public_url = public_url
        self._tls_context = tls_context
        self._now = now
        self._job_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._imports = EmailImports(
            name=name,
            sender=sender,
            to=self._to,
            renderer=renderer,
            mode=mode,
            domain=message_id_domain,
            state=state,
            public_url=public_url,
            failures=failures,
            now=now,
            deliver=self._deliver,
        )

    async def send(self, message: Message) -> SendResult:
        """Send the email this event calls for (none for a non-final event in summary mode);
        an event told inside an import goes to the import's thread (email_import.py)."""
        if message.import_id is not None:
            return await self._imports.send(message)
        if self._mode == "summary" and not is_summary_event(message.event_type):
            return SendResult(
                response_excerpt="skipped: summary mode emails only when the job ends"
            )
        data: Mapping[str, Any] = message.payload.get("data") or {}
        job_id = str(data.get("job_id") or "unknown")
        context = template_context(
            payload=message.payload, job=message.job, public_url=self._public_url
        )
        kind = "summary" if self._mode == "summary" else "event"
        try:
            subject = self._renderer.render("email/subject.txt.j2", context)
            text = self._renderer.render(f"email/{kind}.txt.j2", context)
            html = self._renderer.render(f"email/{kind}.html.j2", context)
        except TemplateProblem as exc:
            raise SendError(f"template problem: {exc}", permanent=True) from None
        root = root_message_id(channel=self._name, job_id=job_id, domain=self._domain)
        key = f"email:{self._name}:{data.get('account')}:{job_id}"
        async with self._job_locks.setdefault(key, asyncio.Lock()):
            is_root = await self._claims_root(key, message, data)
        message_id = (
            root
            if is_root
            else reply_message_id(
                channel=self._name, job_id=job_id, event_id=message.event_id, domain=self._domain
            )
        )
        mail = compose(
            subject=subject,
            text=text,
            html=html,
            sender=self._sender,
            to=self._to,
            message_id=message_id,
            root_id=None if is_root else root,
            date=self._now(),
        )
        reply = await self._deliver(mail)
        log.info(
            "email sent",
            extra={"channel": self._name, "event_id": message.event_id, "message_id": message_id},
        )
        return SendResult(response_excerpt=reply[:200])

    async def _claims_root(self, key: str, message: Message, data: Mapping[str, Any]) -> bool:
        """True when this event's email opens the job's thread (keeps the root Message-ID).

        The claim is written before sending: if it were written after, a failed write following a
        sent email would hand the root Message-ID to a second email, which clients drop as a
        duplicate. Claimed first, the worst case is a root that never arrived: later emails still
        thread by References and subject. A retried event keeps its claim (same event id).
        """
        if self._state is None:
            return self._mode == "summary" or data.get("sequence") == 1
        try:
            held = await self._state.claim_state(key, {"root_event_id": message.event_id})
        except Exception as exc:  # the store is the database: any failure is worth a retry
            raise SendError(f"channel state unavailable: {type(exc).__name__}") from None
        return held is None or held.get("root_event_id") == message.event_id

    async def _deliver(self, mail: EmailMessage) -> str:
        """One SMTP session; returns the server's answer to DATA."""
        try:
            refused, reply = await aiosmtplib.send(
                mail.as_bytes(policy=WIRE_POLICY),
                sender=self._sender,
                recipients=list(self._to),
                hostname=self._host,
                port=self._port,
                username=self._username,
                password=self._password,
                use_tls=self._use_tls,
                start_tls=self._starttls,
                tls_context=self._tls_context,
                timeout=self._timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            raise SendError(
                f"every recipient refused (SMTP {', '.join(map(str, codes))})",
                permanent=smtp_reply_is_permanent(codes),
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            what = (
                "authentication failed"
                if isinstance(exc, aiosmtplib.SMTPAuthenticationError)
                else "refused"
            )
            raise SendError(
                f"SMTP {what}: {exc.code} {exc.message[:200]}",
                permanent=smtp_reply_is_permanent([exc.code]),
            ) from None
        except (aiosmtplib.SMTPTimeoutError, TimeoutError):
            raise SendError(f"SMTP timeout after {self._timeout_s:g}s") from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise SendError(
                f"SMTP connection error: {type(exc).__name__}: {str(exc)[:200]}"
            ) from None
        if refused:
            log.warning(
                "email recipients refused",
                extra={"channel": self._name, "refused": sorted(refused)},
            )
        return reply
