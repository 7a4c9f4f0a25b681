"""Configured channels hear each change of a job once: delivery streams, positions, change keys.

Existing deliveries all belong to a watch's stream, in sequence order (the order they were sent in).

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
