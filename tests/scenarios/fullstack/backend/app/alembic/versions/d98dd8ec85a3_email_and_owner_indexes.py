"""Unique email, and the owner lookup, built without blocking writes

Revision ID: d98dd8ec85a3
Revises: e2412789c190
"""
from alembic import op

revision = "d98dd8ec85a3"
down_revision = "e2412789c190"


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index("ix_user_email", "user", ["email"], unique=True, postgresql_concurrently=True)
        op.create_index("ix_item_owner_id", "item", ["owner_id"], postgresql_concurrently=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index("ix_item_owner_id", table_name="item", postgresql_concurrently=True)
        op.drop_index("ix_user_email", table_name="user", postgresql_concurrently=True)
