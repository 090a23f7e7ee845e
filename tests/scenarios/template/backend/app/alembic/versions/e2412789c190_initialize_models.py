"""Initialize models

Revision ID: e2412789c190
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "e2412789c190"
down_revision = None


def upgrade() -> None:
    op.create_table("user", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("email", sa.String(), nullable=False), sa.Column("full_name", sa.String()))
    # The table is new: nobody can wait for this build, so it needs no CONCURRENTLY.
    op.create_index("ix_user_email", "user", ["email"], unique=True)
    op.create_table("item", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("title", sa.String(), nullable=False),
                    sa.Column("owner_id", sa.Integer, sa.ForeignKey("user.id", name="item_owner_id_fkey")))


def downgrade() -> None:
    op.drop_table("item")
    op.drop_index("ix_user_email", table_name="user")
    op.drop_table("user")
