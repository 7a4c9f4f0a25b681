"""A channel that cannot even be built is an attempt all the same: recorded and counted, so the
delivery follows its retry schedule (and goes dead in the end) instead of blocking its stream."""

from __future__ import annotations

import httpx

from bridge.clock import utcnow
from bridge.delivery import signing
from bridge.store import open_store
from tests.integration.delivery_support import deliverer_for, delivery_config
from tests.integration.outbox_rows import add_events, add_watch


async def test_a_channel_that_fails_to_build_is_a_counted_failed_attempt(storage_url):
    settings = delivery_config(
        signing.new_secret(), timeout_s=5, retry_schedule_s=[60], api_key="aigen_test_build"
    )
    store = await open_store(storage_url)
    try:
        async with httpx.AsyncClient() as http:
            deliverer = deliverer_for(
                settings, store, http, on_free=lambda: None, owner="me", seed=1
            )

            def broken(*args, **kwargs):
                raise ValueError("a constructor's bug")

            deliverer._channels.for_destination = broken  # type: ignore[method-assign]
            watch = await add_watch(store, at=utcnow(), webhook_url="https://hooks.example/in")
            await add_events(store, watch, count=1, at=utcnow())

            assert await deliverer.deliver_due() == 1  # attempted, and recorded
            await deliverer.aclose(timeout_s=5)
        [delivery] = await store.watches.deliveries(watch_id=watch.id)
        assert (delivery.status, delivery.attempts) == ("pending", 1)
        assert delivery.last_error == "internal error in channel: ValueError"
    finally:
        await store.close()
