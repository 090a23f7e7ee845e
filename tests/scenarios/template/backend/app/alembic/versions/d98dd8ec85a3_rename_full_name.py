"""Rename full_name, add is_active

Revision ID: d98dd8ec85a3
Revises: 9c0a54914c78
"""
import sqlalchemy as sa
from alembic import op

revision = "d98dd8ec85a3"
down_revision = "9c0a54914c78"


def upgrade() -> None:
    op.alter_column("user", "full_name", new_column_name="name")
    op.add_column("user", sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true()))


def downgrade() -> None:
    op.drop_column("user", "is_active")
    op.alter_column("user", "name", new_column_name="full_name")
