"""Reference schema: the B2B ordering marketplace the later migrations tune.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from dbtune import ops

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    ops.run_sql_file("schema/reference_schema.sql")


def downgrade() -> None:
    ops.run_sql_file("schema/reference_schema_down.sql")
