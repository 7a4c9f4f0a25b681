from dataclasses import replace
from datetime import UTC, datetime, timedelta
from random import Random

from bridge.config import parse_config
from bridge.events.routing import Router
from bridge.polling.outcomes import ServerError
from bridge.polling.planning import PROCESSING_FAILURES, PlanContext, plan_failure, plan_poll
from bridge.store.records import WatchRecord
from bridge.store.rows import JobRow

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
CONFIG = parse_config("polling: {queued_interval_s: 10.0, processing_interval_s: 5.0}", env={})
CTX = PlanContext(polling=CONFIG.polling, router=Router.from_config(CONFIG), now=T0, rng=Random(0))
JOB = JobRow(None, "processing", False, T0, 5.0, 0, T0, T0, 0, None, 0, 0, "main", "job-1")
WATCH = WatchRecord(
    id="wat_1",
    client="shop",
    account="main",
    job_id="job-1",
    status="active",
    webhook_url=None,
    events=("*",),
    metadata={},
    created_at=T0,
    updated_at=T0,
    expires_at=T0 + timedelta(hours=1),
    last_sequence=4,
    first_polled_at=T0,
    error_code=None,
    error_message=None,
    job=None,
    last_polled_at=T0,
    next_poll_at=T0,
)


def test_plan_failure_counts_and_backs_off_before_the_third():
    for failures in range(1, PROCESSING_FAILURES):
        write = plan_failure(replace(JOB, failure_count=failures - 1), [WATCH], CTX)
        assert write.job is not None and write.job.failure_count == failures
        assert write.job.next_poll_at is not None and write.job.next_poll_at > T0
        assert (write.events, write.watches) == ([], [])


def test_plan_failure_ends_the_watches_with_internal_error_on_the_third():
    write = plan_failure(replace(JOB, failure_count=PROCESSING_FAILURES - 1), [WATCH], CTX)
    assert write.job is not None
    assert (write.job.failure_count, write.job.next_poll_at) == (PROCESSING_FAILURES, None)
    [event] = write.events
    assert (event.type, event.sequence) == ("watch.failed", 5)
    assert event.payload["data"]["error"]["code"] == "internal_error"
    [change] = write.watches
    assert (change.status, change.error_code) == ("failed", "internal_error")


def test_a_processed_poll_resets_the_failure_count():
    failing = replace(JOB, failure_count=PROCESSING_FAILURES - 1)
    upstream_error = ServerError(rate_limit=None, request_id=None, status_code=503)
    write = plan_poll(failing, [WATCH], upstream_error, CTX)  # processed fine: not our failure
    assert write.job is not None and write.job.failure_count == 0
