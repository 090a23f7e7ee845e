"""The email lookup, built without blocking writes

Revision ID: s2
Revises: s1
"""
from alembic import op

revision = "s2"
down_revision = "s1"


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index("ix_accounts_email", "accounts", ["email"], unique=True, postgresql_concurrently=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index("ix_accounts_email", table_name="accounts", postgresql_concurrently=True)
