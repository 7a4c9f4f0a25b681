"""Retention and fair polling: when a watch ended, active watches per client, who a poll served.

Revision ID: 0005_retention
Revises: 0004_faults
"""

import sqlalchemy as sa
from alembic import op

from bridge.store.tables import UTCDateTime

revision = "0005_retention"
down_revision = "0004_faults"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("watches") as batch:
        batch.add_column(sa.Column("ended_at", UTCDateTime))
    # A watch that already ended did so when it was last updated: nothing changes an ended watch.
    op.execute("UPDATE watches SET ended_at = updated_at WHERE status <> 'active'")
    op.create_index("ix_watches_ended", "watches", ["ended_at"])
    op.create_index("ix_watches_client_status", "watches", ["client", "status"])
    with op.batch_alter_table("poll_log") as batch:
        batch.add_column(sa.Column("client", sa.String(200)))


def downgrade() -> None:
    with op.batch_alter_table("poll_log") as batch:
        batch.drop_column("client")
    op.drop_index("ix_watches_client_status", "watches")
    op.drop_index("ix_watches_ended", "watches")
    with op.batch_alter_table("watches") as batch:
        batch.drop_column("ended_at")
