"""The Slack app's subscriptions and mutes.

Revision ID: 0009_slack_subscriptions
Revises: 0008_console_indexes
"""

import sqlalchemy as sa
from alembic import op

from bridge.store.tables import UTCDateTime

revision = "0009_slack_subscriptions"
down_revision = "0008_console_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slack_subscriptions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("team_id", sa.String(40), nullable=False),
        sa.Column("channel_id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("account", sa.String(200)),
        sa.Column("events", sa.JSON, nullable=False),
        sa.Column("created_by", sa.String(40)),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("channel_id", "kind", "target", name="uq_slack_subscriptions_target"),
    )
    op.create_index("ix_slack_subscriptions_channel", "slack_subscriptions", ["channel_id", "id"])
    op.create_table(
        "slack_mutes",
        sa.Column("channel_id", sa.String(40), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("target", sa.String(200), primary_key=True),
        sa.Column("created_by", sa.String(40)),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("slack_mutes")
    op.drop_index("ix_slack_subscriptions_channel", table_name="slack_subscriptions")
    op.drop_table("slack_subscriptions")
