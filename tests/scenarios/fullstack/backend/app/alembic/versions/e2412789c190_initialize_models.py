"""Initialize models

Revision ID: e2412789c190
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "e2412789c190"
down_revision = None


def upgrade() -> None:
    op.create_table("user", sa.Column("id", sa.Uuid, primary_key=True),
                    sa.Column("email", sa.String(255), nullable=False), sa.Column("full_name", sa.String(255)))
    op.create_table("item", sa.Column("id", sa.Uuid, primary_key=True),
                    sa.Column("title", sa.String(255), nullable=False),
                    sa.Column("owner_id", sa.Uuid, sa.ForeignKey("user.id", ondelete="CASCADE"), nullable=False))


def downgrade() -> None:
    op.drop_table("item")
    op.drop_table("user")
