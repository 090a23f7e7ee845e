"""Materialized views: daily revenue, vendor performance, retailer credit, each refreshable concurrently.

Revision ID: 0007
Revises: 0006

Created WITH NO DATA (populating them would hold this migration for as long as
the queries take on a large database); `dbtune refresh` populates them the first
time and refreshes them CONCURRENTLY after that, using the unique index each
view's file builds through the online engine.
"""

from __future__ import annotations

from dbtune import ops

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

VIEWS = ("daily_revenue_summary", "vendor_performance_summary", "retailer_credit_summary")


def upgrade() -> None:
    ops.create_materialized_views(*VIEWS)


def downgrade() -> None:
    ops.drop_materialized_views(*VIEWS)
