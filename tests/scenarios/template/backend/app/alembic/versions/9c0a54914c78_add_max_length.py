"""Add max length for string columns

Revision ID: 9c0a54914c78
Revises: e2412789c190
"""
import sqlalchemy as sa
from alembic import op

revision = "9c0a54914c78"
down_revision = "e2412789c190"


def upgrade() -> None:
    op.alter_column("user", "email", type_=sa.String(255), existing_nullable=False)
    op.alter_column("item", "title", type_=sa.String(255), existing_nullable=False)


def downgrade() -> None:
    op.alter_column("item", "title", type_=sa.String(), existing_nullable=False)
    op.alter_column("user", "email", type_=sa.String(), existing_nullable=False)
