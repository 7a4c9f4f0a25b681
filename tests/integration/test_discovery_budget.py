"""Discovery and polling together against the simulator, with a small budget and many jobs: every
upstream request of the key, list or poll, counted in every rolling hour, stays within polls_per_hour."""

from __future__ import annotations

import pytest

from tests.integration.discovery_support import HOUR, KEYS, rig

MAIN = KEYS["main"]
POLLS_PER_HOUR = 30
SHARE = POLLS_PER_HOUR // 4  # discovery's most list requests in any rolling hour


def _most_in_an_hour(times: list) -> int:
    times = sorted(times)
    start, most = 0, 0
    for end, at in enumerate(times):
        while times[start] <= at - HOUR:
            start += 1
        most = max(most, end - start + 1)
    return most


@pytest.mark.slow
async def test_discovery_and_polling_never_exceed_the_hourly_budget(storage_url):
    async with rig(
        storage_url,
        polls_per_hour=POLLS_PER_HOUR,
        sim_polls_per_hour=POLLS_PER_HOUR,  # the simulator refuses the 31st request in an hour
        interval_s=60,  # discovery would list every minute if the budget let it
        page_size=5,
        seconds_per_item=400.0,  # 20 items: each job stays processing for over two hours
    ) as r:
        jobs = [r.sim.create_job(MAIN, total_items=20) for _ in range(12)]
        early = set(jobs)
        for minute in range(80):
            if minute % 10 == 5:  # a new job every ten minutes
                jobs.append(r.sim.create_job(MAIN, total_items=20))
            if minute == 30:
                early = set(jobs)
            await r.run(60, step=5)  # a poll is due every 120 s: 5 s steps still spend it all

        sent = r.transport.sent[MAIN]
        lists = r.transport.lists(MAIN)
        polls = [at for at, path in sent if not path.endswith("/product-photo-jobs")]
        assert r.transport.most_in_an_hour(MAIN) <= POLLS_PER_HOUR
        assert _most_in_an_hour(lists) <= SHARE
        assert r.sim.stats()["keys"][MAIN]["rate_limited"] == 0  # the upstream never refused one
        # The budget was spent, and mostly (three quarters or more) on polling the watched jobs.
        assert len(sent) >= POLLS_PER_HOUR
        assert len(polls) >= 2 * len(lists)
        assert early <= await r.discovered_jobs()  # every job of the first half hour was found
        assert r.transport.sent[KEYS["quiet"]] == []
