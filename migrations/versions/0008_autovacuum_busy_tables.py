"""Autovacuum settings for the busiest tables: analyze and vacuum orders, credit_ledgers, payments sooner.

Revision ID: 0008
Revises: 0007

The defaults wait for 10% (analyze) and 20% (vacuum) of a table to change; on
tables that take most of the writes the planner's estimates and the visibility
map drift well before that.  ALTER TABLE ... SET (autovacuum_*) takes a SHARE
UPDATE EXCLUSIVE lock (writes continue), under dbtune's bounded lock_timeout
with retries like every transactional step.
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLES = ("orders", "credit_ledgers", "payments")
SETTINGS = "autovacuum_analyze_scale_factor = 0.05, autovacuum_vacuum_scale_factor = 0.1"


def upgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} SET ({SETTINGS})")


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} RESET (autovacuum_analyze_scale_factor, autovacuum_vacuum_scale_factor)")
