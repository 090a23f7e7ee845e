"""Covering indexes (INCLUDE): list pages answered from the index alone.

Revision ID: 0005
Revises: 0004

Built CONCURRENTLY by dbtune's online engine, outside any transaction: the
application keeps writing; re-running after a failure finishes the job.
"""

from __future__ import annotations

from dbtune import ops

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

INDEXES = (
    "ix_orders_retailer_id_created_at_covering",
    "ix_vendor_products_vendor_id_product_id_covering",
)


def upgrade() -> None:
    ops.create_indexes(*INDEXES)


def downgrade() -> None:
    ops.drop_indexes(*INDEXES)
