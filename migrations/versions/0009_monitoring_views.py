"""Monitoring views in their own schema: slow queries, index usage, bloat, missing, unused, duplicate and
invalid indexes, cache hit ratio.

Revision ID: 0009
Revises: 0008

Catalog changes only (no table is locked or read): each view is written for the
server it is created on, and `dbtune report --repair-views` writes them again
after a server upgrade or once pg_stat_statements is preloaded.
"""

from __future__ import annotations

from dbtune import ops

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ops.create_monitoring_views()


def downgrade() -> None:
    ops.drop_monitoring_views()
