"""Configured channels hear each change of a job once: delivery streams, positions, change keys.

Existing deliveries keep their sequence order: a watch's own webhook in the watch's stream, a
configured channel in its job's stream, so a channel delivery still pending at the upgrade holds back
the job's later changes (positions from polls are times in ms, far above any sequence).

Revision ID: 0002_channel_once
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_channel_once"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("stream", sa.String(300)))
        batch.add_column(sa.Column("position", sa.BigInteger))
        batch.add_column(sa.Column("change_key", sa.String(64)))
    op.execute("UPDATE deliveries SET stream = 'watch:' || watch_id, position = sequence")
    op.execute(
        "UPDATE deliveries SET stream = COALESCE((SELECT 'job:' || w.account || '/' || w.job_id"
        " FROM watches w WHERE w.id = deliveries.watch_id), stream)"
        " WHERE destination <> 'webhook_url'"
    )
    with op.batch_alter_table("deliveries") as batch:
        batch.alter_column("stream", existing_type=sa.String(300), nullable=False)
        batch.alter_column("position", existing_type=sa.BigInteger, nullable=False)
        batch.create_unique_constraint(
            "uq_deliveries_destination_change", ["destination", "change_key"]
        )
    op.create_index("ix_deliveries_stream", "deliveries", ["stream", "destination", "position"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_stream", table_name="deliveries")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_constraint("uq_deliveries_destination_change", type_="unique")
        batch.drop_column("change_key")
        batch.drop_column("position")
        batch.drop_column("stream")
