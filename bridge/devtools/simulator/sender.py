"""WebhookSender: posts the webhooks jobs owe, in the background, each once with a timeout.

The upstream tells receivers that polling is the source of truth, so a webhook that fails (refused,
non-2xx, timed out) is logged and dropped, never retried; request handlers never wait on a send.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import httpx

from bridge.devtools.simulator.state import Simulator
from bridge.devtools.simulator.webhooks import Webhook

log = logging.getLogger(__name__)
USER_AGENT = "aigen-simulator-webhooks/1"


class WebhookSender:
    """Every `webhook_interval_s`, sends what the Simulator's jobs owe; tests may call send_due."""

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator
        self._http: httpx.AsyncClient | None = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[WebhookSender]:
        """Send in the background for the duration of the block (the app's lifespan)."""
        settings = self.simulator.settings
        async with httpx.AsyncClient(
            timeout=settings.webhook_timeout_s,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
        ) as http:
            self._http = http
            task = asyncio.create_task(self._loop(settings.webhook_interval_s))
            try:
                yield self
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                self._http = None

    async def send_due(self) -> int:
        """Send every webhook due now, in order per URL; return how many were delivered."""
        by_url: dict[str, list[Webhook]] = {}
        for webhook in self.simulator.due_webhooks():
            by_url.setdefault(webhook.url, []).append(webhook)
        sent = await asyncio.gather(*(self._send_in_order(batch) for batch in by_url.values()))
        return sum(sent)

    async def _loop(self, interval_s: float) -> None:
        while True:
            try:
                await self.send_due()
            except Exception:  # a bug here must not stop later webhooks; it is logged
                log.exception("simulator webhooks failed")
            await asyncio.sleep(interval_s)

    async def _send_in_order(self, batch: list[Webhook]) -> int:
        return sum([await self._send(webhook) for webhook in batch])

    async def _send(self, webhook: Webhook) -> int:
        if self._http is None:
            raise RuntimeError("WebhookSender.send_due needs the running() block")
        problem: str | None = None
        try:
            response = await self._http.post(
                webhook.url, content=webhook.body, headers=webhook.headers
            )
            if not response.is_success:
                problem = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            problem = type(exc).__name__
        self.simulator.record_webhook(webhook.job_id, delivered=problem is None)
        if problem is None:
            return 1
        log.warning(
            "simulator webhook not delivered, dropped",
            extra={
                "job_id": webhook.job_id,
                "event_id": webhook.event_id,
                "type": webhook.type,
                "problem": problem,
            },
        )
        return 0
