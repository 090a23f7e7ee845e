"""Extensions: pg_trgm (trigram search), btree_gin, pg_stat_statements (slow query monitoring).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from dbtune import ops

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ops.create_extensions("pg_trgm", "btree_gin", "pg_stat_statements", preloaded=("pg_stat_statements",))


def downgrade() -> None:
    # Left in place on purpose: they may predate dbtune (we create them IF NOT
    # EXISTS) and the application may use them; dropping one is a DBA's call.
    # dbtune: ignore[empty-downgrade]
    pass
