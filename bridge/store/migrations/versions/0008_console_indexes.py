"""Indexes for the console's lists: watches and imports by status, newest first, so a page of the
active ones is one index range however many ended ones lie behind it; an import's jobs in id order;
and each account's active jobs counted from the active watches alone.

Revision ID: 0008_console_indexes
Revises: 0007_imports
"""

from alembic import op

revision = "0008_console_indexes"
down_revision = "0007_imports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_watches_status_id", "watches", ["status", "id"])
    op.create_index("ix_imports_status_id", "imports", ["status", "id"])
    op.create_index("ix_watches_import_id", "watches", ["import_id", "id"])
    op.create_index("ix_watches_status_account", "watches", ["status", "account", "job_id"])


def downgrade() -> None:
    op.drop_index("ix_watches_status_account", table_name="watches")
    op.drop_index("ix_watches_import_id", table_name="watches")
    op.drop_index("ix_imports_status_id", table_name="imports")
    op.drop_index("ix_watches_status_id", table_name="watches")
