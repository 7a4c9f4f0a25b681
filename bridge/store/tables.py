"""The schema, as SQLAlchemy Core tables; migrations/ creates the same schema step by step."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator


def aware_utc(value: datetime) -> datetime:
    """`value` in UTC; ValueError for a naive datetime (its zone would be a guess)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the database; use aware UTC")
    return value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = aware_utc(value)
        # SQLite stores text: drop the offset so every stored value compares as text in time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

watches = Table(
    "watches",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("client", String(200), nullable=False),
    Column("account", String(200), nullable=False),
    Column("job_id", String(64), nullable=False),
    Column("status", String(20), nullable=False),
    Column("webhook_url", Text),
    Column("events", JSON, nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("idempotency_key", String(255)),
    Column("last_sequence", Integer, nullable=False, default=0),
    Column("first_polled_at", UTCDateTime),
    Column("error_code", String(64)),
    Column("error_message", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column(
        "ended_at", UTCDateTime
    ),  # set when the status leaves `active`; retention counts from it
    # The import the watch's job belongs to, and what the job adds to that import's roll-up as
    # last counted (bridge.events.rollup.Contribution): the next poll adds only the difference.
    Column("import_id", String(40)),
    Column("counted", JSON),
    UniqueConstraint("client", "idempotency_key", name="uq_watches_client_idempotency_key"),
    Index("ix_watches_job", "account", "job_id", "status"),
    Index("ix_watches_client", "client", "id"),
    Index("ix_watches_client_status", "client", "status"),
    Index("ix_watches_expiry", "status", "expires_at"),
    Index("ix_watches_ended", "ended_at"),
    Index("ix_watches_status_id", "status", "id"),  # the console's lists of active watches
    Index("ix_watches_import_id", "import_id", "id"),  # an import's jobs, a page at a time
    Index("ix_watches_status_account", "status", "account", "job_id"),  # active jobs per account
    # One watch per job in an import (NULLs are distinct: watches outside imports are unaffected).
    Index("ix_watches_import", "import_id", "job_id", unique=True),
)

# A catalog import: its jobs are watches with its id; its counts are rolled up incrementally by
# the transactions that poll them (bridge.events.rollup), never recounted from every item.
imports = Table(
    "imports",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("client", String(200), nullable=False),
    Column("account", String(200), nullable=False),
    Column("name", String(200), nullable=False),
    Column("status", String(24), nullable=False),
    Column("closed", Boolean, nullable=False, default=False),
    Column("expected_jobs", Integer),
    Column("webhook_url", Text),
    Column("events", JSON, nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("idempotency_key", String(255)),
    Column("last_sequence", Integer, nullable=False, default=0),
    Column("jobs_total", Integer, nullable=False, default=0),
    Column("jobs_active", Integer, nullable=False, default=0),
    Column("jobs_completed", Integer, nullable=False, default=0),
    Column("jobs_partially_completed", Integer, nullable=False, default=0),
    Column("jobs_failed", Integer, nullable=False, default=0),
    Column("jobs_cancelled", Integer, nullable=False, default=0),
    Column("jobs_seen", Integer, nullable=False, default=0),  # polled once, or ended
    Column("images_total", Integer, nullable=False, default=0),
    Column("images_completed", Integer, nullable=False, default=0),
    Column("images_failed", Integer, nullable=False, default=0),
    Column("credits_used", BigInteger, nullable=False, default=0),
    Column("started", Boolean, nullable=False, default=False),
    Column("progress_tenths", Integer, nullable=False, default=0),
    Column("stalled", Boolean, nullable=False, default=False),
    Column("started_at", UTCDateTime),
    Column("last_finished_at", UTCDateTime),
    Column("finished_by_minute", JSON, nullable=False),  # {"<unix minute>": images} for an hour
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
    UniqueConstraint("client", "idempotency_key", name="uq_imports_client_idempotency_key"),
    Index("ix_imports_client", "client", "id"),
    Index("ix_imports_status", "status", "last_finished_at"),
    Index("ix_imports_ended", "ended_at"),
    Index("ix_imports_status_id", "status", "id"),  # the console's lists of running imports
)

# Each failed (or cancelled) image of an import, in the order the polls found them: the failures
# listing, its CSV, and the Slack thread replies read from here.
import_failures = Table(
    "import_failures",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("import_id", String(40), nullable=False),
    Column("job_id", String(64), nullable=False),
    Column("item_id", String(200), nullable=False),
    Column("external_id", Text),
    Column("error_code", Text),
    Column("error_message", Text),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("import_id", "job_id", "item_id", name="uq_import_failures_item"),
    Index("ix_import_failures_import", "import_id", "id"),
)

upstream_jobs = Table(
    "upstream_jobs",
    metadata,
    Column("account", String(200), primary_key=True),
    Column("job_id", String(64), primary_key=True),
    Column("status", String(64)),
    Column("final", Boolean, nullable=False, default=False),
    Column("next_poll_at", UTCDateTime),
    Column("interval_s", Float, nullable=False, default=0.0),
    Column("priority", Integer, nullable=False, default=0),
    Column("last_polled_at", UTCDateTime),
    Column("last_changed_at", UTCDateTime),
    Column("not_found_count", Integer, nullable=False, default=0),
    Column("first_not_found_at", UTCDateTime),
    Column("error_count", Integer, nullable=False, default=0),
    # Polls in a row whose processing raised (a bridge bug, not the upstream's): three end it.
    Column("failure_count", Integer, nullable=False, default=0, server_default="0"),
    Column("lease_owner", String(80)),
    Column("lease_expires_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Last: on SQLite a few KiB spill onto overflow pages, which reading a later column walks.
    Column("snapshot", JSON),
    Index("ix_upstream_jobs_due", "next_poll_at"),
)

account_budgets = Table(
    "account_budgets",
    metadata,
    Column("account", String(200), primary_key=True),
    Column("next_slot_at", UTCDateTime),
    Column("next_grant_at", UTCDateTime),
    Column("paused_until", UTCDateTime),
    Column("remaining", Integer),
    Column("reset_at", UTCDateTime),
    # The first 401 since the key last worked: a second one a minute later fails the account.
    Column("unauthorized_since", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
)

poll_log = Table(
    "poll_log",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("account", String(200), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("client", String(200)),  # whose turn the poll was (fair queuing between clients)
    Column("kind", String(8)),  # "list" for discovery's list requests; None for a job's poll
    Index("ix_poll_log_account_at", "account", "at"),
)

# Each account's next discovery round (bridge.polling.discovery): one replica takes a round by
# moving next_round_at on, so two replicas never list one account twice in an interval.
discovery_rounds = Table(
    "discovery_rounds",
    metadata,
    Column("account", String(200), primary_key=True),
    Column("next_round_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("watch_id", String(40), nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("type", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("watch_id", "sequence", name="uq_events_watch_sequence"),
)

# Half of each page of the PostgreSQL outbox stays free for the next versions of its rows.
DELIVERIES_FILLFACTOR = 50

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("event_id", String(40), nullable=False),
    Column("watch_id", String(40), nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("destination", String(200), nullable=False),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("lease_owner", String(80)),
    Column("lease_expires_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime),
    # The order deliveries go out in (see bridge.store.rows.NewDelivery), and for a configured
    # channel the change it tells, which it hears once however many watches saw it.
    Column("stream", String(300), nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("change_key", String(64)),
    UniqueConstraint("event_id", "destination", name="uq_deliveries_event_destination"),
    UniqueConstraint("destination", "change_key", name="uq_deliveries_destination_change"),
    Index("ix_deliveries_due", "status", "next_attempt_at"),
    Index("ix_deliveries_stream", "stream", "destination", "position"),
    Index("ix_deliveries_order", "watch_id", "destination", "sequence"),
    # The operator API: a channel's deliveries by status, newest first, and its latest delivery.
    Index("ix_deliveries_destination", "destination", "status", "id"),
    Index("ix_deliveries_delivered", "destination", "delivered_at"),
    # PostgreSQL: room in each page for a row's lease, written as a heap-only tuple (see 0012).
    postgresql_with={"fillfactor": DELIVERIES_FILLFACTOR},
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("delivery_id", String(40), nullable=False, index=True),
    Column("attempted_at", UTCDateTime, nullable=False),
    Column("status_code", Integer),
    Column("error", Text),
    Column("duration_ms", Float, nullable=False),
    Column("response_excerpt", Text),
)

channel_state = Table(
    "channel_state",
    metadata,
    Column("key", String(400), primary_key=True),
    Column("value", JSON, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# One row the readiness probe updates: proof that storage takes a write, not only a read.
storage_probe = Table(
    "storage_probe",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("writes", BigInteger, nullable=False),
)

# Slack channels' own subscriptions (the Slack app's `/photos subscribe ...`): each makes the channel
# hear about an account's jobs, one import or one job, as if a route named it.
slack_subscriptions = Table(
    "slack_subscriptions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("team_id", String(40), nullable=False),
    Column("channel_id", String(40), nullable=False),
    Column("kind", String(16), nullable=False),  # account | import | job
    Column("target", String(200), nullable=False),  # account name, import id or job uuid
    Column("account", String(200)),  # the account of an import's or a job's target, when known
    Column("events", JSON, nullable=False),  # event patterns, ["*"] by default
    Column("created_by", String(40)),  # the Slack user who subscribed
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("channel_id", "kind", "target", name="uq_slack_subscriptions_target"),
    Index("ix_slack_subscriptions_channel", "channel_id", "id"),
)

# A channel that pressed "Mute" on a job's or an import's message hears nothing more about it.
slack_mutes = Table(
    "slack_mutes",
    metadata,
    Column("channel_id", String(40), primary_key=True),
    Column("kind", String(16), primary_key=True),  # job | import
    Column("target", String(200), primary_key=True),  # "<account>/<job uuid>" or an import id
    Column("created_by", String(40)),
    Column("created_at", UTCDateTime, nullable=False),
)
