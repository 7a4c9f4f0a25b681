"""Discovery: list requests marked in the poll log (their share of the hour is counted apart), and
each account's next discovery round, taken by one replica at a time.

Revision ID: 0010_discovery
Revises: 0009_slack_subscriptions
"""

import sqlalchemy as sa
from alembic import op

from bridge.store.tables import UTCDateTime

revision = "0010_discovery"
down_revision = "0009_slack_subscriptions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("poll_log") as batch:
        batch.add_column(sa.Column("kind", sa.String(8)))
    op.create_table(
        "discovery_rounds",
        sa.Column("account", sa.String(200), primary_key=True),
        sa.Column("next_round_at", UTCDateTime),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("discovery_rounds")
    with op.batch_alter_table("poll_log") as batch:
        batch.drop_column("kind")
