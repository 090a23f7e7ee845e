"""customers get a name

Revision ID: a3
Revises: a2
"""
import sqlalchemy as sa
from alembic import op

revision = "a3"
down_revision = "a2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("customers", sa.Column("name", sa.Text))


def downgrade() -> None:
    op.drop_column("customers", "name")
