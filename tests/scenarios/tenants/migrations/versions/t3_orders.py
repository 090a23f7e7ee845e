"""orders, and a slow data step"""
import sqlalchemy as sa
from alembic import op

revision = "t3"
down_revision = "t2"


def upgrade() -> None:
    op.create_table("orders", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), nullable=False))
    op.execute("SELECT pg_sleep(coalesce(nullif(current_setting('app.slow_step', true), ''), '0')::float)")


def downgrade() -> None:
    op.drop_table("orders")
