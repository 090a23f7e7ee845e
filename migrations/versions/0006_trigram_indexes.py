"""Trigram indexes (GIN gin_trgm_ops): substring search on product and user names.

Revision ID: 0006
Revises: 0005

Built CONCURRENTLY by dbtune's online engine, outside any transaction: the
application keeps writing; re-running after a failure finishes the job.
"""

from __future__ import annotations

from dbtune import ops

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

INDEXES = (
    "ix_products_name_trgm",
    "ix_users_name_trgm",
)


def upgrade() -> None:
    ops.create_indexes(*INDEXES)


def downgrade() -> None:
    ops.drop_indexes(*INDEXES)
