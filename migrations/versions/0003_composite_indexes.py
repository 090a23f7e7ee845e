"""Composite indexes: the equality columns first, then the sort or range column.

Revision ID: 0003
Revises: 0002

Built CONCURRENTLY by dbtune's online engine, outside any transaction: the
application keeps writing; re-running after a failure finishes the job.
"""

from __future__ import annotations

from dbtune import ops

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

INDEXES = (
    "ix_orders_retailer_id_status_created_at",
    "ix_orders_vendor_id_status_created_at",
    "ix_credit_ledgers_retailer_vendor_type_created_at",
    "ix_vendor_products_product_vendor_available_price",
    "ix_audit_logs_entity_type_entity_id_created_at",
    "ix_products_category_subcategory_is_active",
    "ix_retailers_credit_score_approval_status",
    "ix_vendors_rating_approval_status",
)


def upgrade() -> None:
    ops.create_indexes(*INDEXES)


def downgrade() -> None:
    ops.drop_indexes(*INDEXES)
