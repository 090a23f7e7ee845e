"""Accounts

Revision ID: s1
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "s1"
down_revision = None


def upgrade() -> None:
    op.create_table("accounts", sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
                    sa.Column("email", sa.Text, nullable=False))


def downgrade() -> None:
    op.drop_table("accounts")
