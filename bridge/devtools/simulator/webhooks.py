"""The upstream's own webhooks: what a job owes its webhook_url as it moves, signed X-Aigen-Signature.

Pure: the Simulator asks `WebhookBook.due` under its lock; `WebhookSender` does the sending.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bridge.devtools.simulator.progress import SimJob, derive_uuid, format_time

FINAL_ITEM = frozenset({"completed", "failed", "cancelled"})


@dataclass(frozen=True, slots=True)
class Webhook:
    """One signed POST for a job's webhook_url: send exactly these headers and bytes."""

    url: str
    job_id: str
    event_id: str
    type: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Told:
    """What a job's webhook_url last heard: the job's status and each item's."""

    status: object
    items: dict[object, object]


def signature(*, api_key: str, timestamp: str, event_id: str, body: bytes) -> str:
    """`v1=<hex HMAC-SHA256 of "{timestamp}.{event_id}.{raw_body}">`, keyed by sha256(api key) in hex."""
    key = hashlib.sha256(api_key.encode()).hexdigest().encode()
    signed = f"{timestamp}.{event_id}.".encode() + body
    return "v1=" + hmac.new(key, signed, hashlib.sha256).hexdigest()


def told_of(body: dict[str, Any]) -> Told:
    """What a webhook_url learns from this body: the job's status and each item's."""
    items = body.get("items")
    listed = items if isinstance(items, list) else []
    return Told(
        status=body.get("status"),
        items={i["id"]: i.get("status") for i in listed if isinstance(i, dict) and "id" in i},
    )


def changes(before: Told, body: dict[str, Any]) -> list[tuple[str, dict[str, Any] | None]]:
    """The (event type, item) pairs a job owes: items that finished, in order, then a new status."""
    owed: list[tuple[str, dict[str, Any] | None]] = []
    items = body.get("items")
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        status = item.get("status")
        if status in FINAL_ITEM and before.items.get(item.get("id")) != status:
            owed.append((f"product_photo_job.item.{status}", item))
    status = body.get("status")
    if isinstance(status, str) and status != before.status:
        owed.append((f"product_photo_job.{status}", None))
    return owed


class WebhookBook:
    """Remembers what each job's webhook_url was told, and turns a job's new state into webhooks."""

    def __init__(self, *, seed: int) -> None:
        self._seed = seed
        self._told: dict[str, Told] = {}
        self._count = 0

    def start(self, job_id: str, body: dict[str, Any]) -> None:
        """Note the job's state at creation: the creator needs no webhook to learn it."""
        self._told[job_id] = told_of(body)

    def due(self, job: SimJob, body: dict[str, Any], *, now: datetime) -> list[Webhook]:
        """The webhooks `job` owes for moving to `body` since it last told; each is told once."""
        if job.webhook_url is None:
            return []
        owed = changes(self._told.get(job.id, Told(None, {})), body)
        self._told[job.id] = told_of(body)
        return [self._webhook(job, body, kind=kind, item=item, now=now) for kind, item in owed]

    def _webhook(
        self,
        job: SimJob,
        body: dict[str, Any],
        *,
        kind: str,
        item: dict[str, Any] | None,
        now: datetime,
    ) -> Webhook:
        assert job.webhook_url is not None
        self._count += 1
        event_id = "evt_" + derive_uuid(self._seed, job.id, "webhook", self._count).replace("-", "")
        summary = {k: v for k, v in body.items() if k not in ("id", "items")}
        data: dict[str, Any] = {"job": {"id": job.id, **summary}}
        if item is not None:
            data["item"] = item
        payload = {"id": event_id, "type": kind, "created_at": format_time(now), "data": data}
        raw = json.dumps(payload, separators=(",", ":")).encode()
        timestamp = str(int(now.timestamp()))
        headers = {
            "Content-Type": "application/json",
            "X-Aigen-Event-Id": event_id,
            "X-Aigen-Timestamp": timestamp,
            "X-Aigen-Signature": signature(
                api_key=job.api_key, timestamp=timestamp, event_id=event_id, body=raw
            ),
        }
        return Webhook(
            url=job.webhook_url,
            job_id=job.id,
            event_id=event_id,
            type=kind,
            headers=headers,
            body=raw,
        )
