"""customers, in the tenant's schema"""
import sqlalchemy as sa
from alembic import op

revision = "t1"
down_revision = None


def upgrade() -> None:
    op.create_table("customers", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("email", sa.Text, nullable=False), sa.Column("full_name", sa.Text),
                    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()))
    op.execute("INSERT INTO customers (email, full_name) SELECT 'c' || i || '@x.test', 'Customer ' || i "
               "FROM generate_series(1, 200) i")


def downgrade() -> None:
    op.drop_table("customers")
