"""Claims of due jobs at the store: accounts not configured are passed over, whoever is first."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bridge.polling import budget
from bridge.polling.budget import Limits
from bridge.store import open_store
from tests.clock import T0

pytestmark = pytest.mark.parametrize("storage_url", ["sqlite", "postgresql"], indirect=True)


async def test_claim_due_passes_over_jobs_of_accounts_not_configured(storage_url):
    store = await open_store(storage_url)
    try:
        # The removed account's jobs are due first, and there are more of them than the batch.
        for n, account in enumerate(["gone"] * 3 + ["main"]):
            await store.watches.create(
                client="shop", account=account, job_id=f"job-{n}", webhook_url=None,
                events=["*"], metadata={}, idempotency_key=None,
                now=T0 + timedelta(seconds=n), ttl=timedelta(hours=1),
            )  # fmt: skip
        await store.jobs.ensure_budgets(["gone", "main"], now=T0)
        now = T0 + timedelta(minutes=1)
        limits = Limits(polls_per_hour=3600, max_concurrency=4)
        claims = await store.jobs.claim_due(
            now=now,
            owner="me",
            lease=timedelta(seconds=30),
            accounts=["main"],
            per_account=4,
            limit=2,
            decide=lambda demand: budget.decide(demand, limits=limits, now=now),
        )
        assert [(c.job.account, c.job.job_id) for c in claims] == [("main", "job-3")]
    finally:
        await store.close()
