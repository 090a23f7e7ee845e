"""Add cascade delete relationships

Revision ID: 1a31ce608336
Revises: d98dd8ec85a3
"""
import sqlalchemy as sa
from alembic import op

revision = "1a31ce608336"
down_revision = "d98dd8ec85a3"


def upgrade() -> None:
    op.alter_column("item", "owner_id", existing_type=sa.Integer(), nullable=False)
    op.drop_constraint("item_owner_id_fkey", "item", type_="foreignkey")
    op.create_foreign_key("item_owner_id_fkey", "item", "user", ["owner_id"], ["id"], ondelete="CASCADE")


def downgrade() -> None:
    op.drop_constraint("item_owner_id_fkey", "item", type_="foreignkey")
    op.create_foreign_key("item_owner_id_fkey", "item", "user", ["owner_id"], ["id"])
    op.alter_column("item", "owner_id", existing_type=sa.Integer(), nullable=True)
