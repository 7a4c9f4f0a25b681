"""The initial schema: watches, upstream jobs, poll budget, events, the delivery outbox.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from bridge.store.tables import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "watches",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("client", sa.String(200), nullable=False),
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("webhook_url", sa.Text),
        sa.Column("events", sa.JSON, nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("idempotency_key", sa.String(255)),
        sa.Column("last_sequence", sa.Integer, nullable=False),
        sa.Column("first_polled_at", UTCDateTime),
        sa.Column("error_code", sa.String(64)),
        sa.Column("error_message", sa.Text),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("client", "idempotency_key", name="uq_watches_client_idempotency_key"),
    )
    op.create_index("ix_watches_job", "watches", ["account", "job_id", "status"])
    op.create_index("ix_watches_client", "watches", ["client", "id"])
    op.create_index("ix_watches_expiry", "watches", ["status", "expires_at"])

    op.create_table(
        "upstream_jobs",
        sa.Column("account", sa.String(200), primary_key=True),
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("snapshot", sa.JSON),
        sa.Column("status", sa.String(64)),
        sa.Column("final", sa.Boolean, nullable=False),
        sa.Column("next_poll_at", UTCDateTime),
        sa.Column("interval_s", sa.Float, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("last_polled_at", UTCDateTime),
        sa.Column("last_changed_at", UTCDateTime),
        sa.Column("not_found_count", sa.Integer, nullable=False),
        sa.Column("first_not_found_at", UTCDateTime),
        sa.Column("error_count", sa.Integer, nullable=False),
        sa.Column("lease_owner", sa.String(80)),
        sa.Column("lease_expires_at", UTCDateTime),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_upstream_jobs_due", "upstream_jobs", ["next_poll_at"])

    op.create_table(
        "account_budgets",
        sa.Column("account", sa.String(200), primary_key=True),
        sa.Column("next_slot_at", UTCDateTime),
        sa.Column("next_grant_at", UTCDateTime),
        sa.Column("paused_until", UTCDateTime),
        sa.Column("remaining", sa.Integer),
        sa.Column("reset_at", UTCDateTime),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "poll_log",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_poll_log_account_at", "poll_log", ["account", "at"])

    op.create_table(
        "events",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("watch_id", sa.String(40), nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("watch_id", "sequence", name="uq_events_watch_sequence"),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("event_id", sa.String(40), nullable=False),
        sa.Column("watch_id", sa.String(40), nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("destination", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime),
        sa.Column("last_status_code", sa.Integer),
        sa.Column("last_error", sa.Text),
        sa.Column("lease_owner", sa.String(80)),
        sa.Column("lease_expires_at", UTCDateTime),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("delivered_at", UTCDateTime),
        sa.UniqueConstraint("event_id", "destination", name="uq_deliveries_event_destination"),
    )
    op.create_index("ix_deliveries_due", "deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_deliveries_order", "deliveries", ["watch_id", "destination", "sequence"])

    op.create_table(
        "delivery_attempts",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.String(40), nullable=False),
        sa.Column("attempted_at", UTCDateTime, nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("duration_ms", sa.Float, nullable=False),
        sa.Column("response_excerpt", sa.Text),
    )
    op.create_index("ix_delivery_attempts_delivery_id", "delivery_attempts", ["delivery_id"])

    op.create_table(
        "channel_state",
        sa.Column("key", sa.String(400), primary_key=True),
        sa.Column("value", sa.JSON, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "channel_state",
        "delivery_attempts",
        "deliveries",
        "events",
        "poll_log",
        "account_budgets",
        "upstream_jobs",
        "watches",
    ):
        op.drop_table(table)
