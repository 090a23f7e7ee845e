"""Partial indexes: only the small, hot slice of a table (open orders, unpaid payments, unprocessed messages).

Revision ID: 0004
Revises: 0003

Built CONCURRENTLY by dbtune's online engine, outside any transaction: the
application keeps writing; re-running after a failure finishes the job.
"""

from __future__ import annotations

from dbtune import ops

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

INDEXES = (
    "ix_orders_vendor_id_created_at_active",
    "ix_payments_due_date_unpaid",
    "ix_orders_created_at_pending_acceptance",
    "ix_whatsapp_messages_created_at_unprocessed",
)


def upgrade() -> None:
    ops.create_indexes(*INDEXES)


def downgrade() -> None:
    ops.drop_indexes(*INDEXES)
