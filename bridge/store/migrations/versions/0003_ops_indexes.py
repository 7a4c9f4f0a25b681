"""Indexes for the operator API: deliveries by destination and status in id order, and each
destination's latest delivery.

Revision ID: 0003_ops_indexes
Revises: 0002_channel_once
"""

from alembic import op

revision = "0003_ops_indexes"
down_revision = "0002_channel_once"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_deliveries_destination", "deliveries", ["destination", "status", "id"])
    op.create_index("ix_deliveries_delivered", "deliveries", ["destination", "delivered_at"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_delivered", table_name="deliveries")
    op.drop_index("ix_deliveries_destination", table_name="deliveries")
