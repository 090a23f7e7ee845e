"""unique email per tenant, built concurrently between two transactional steps"""
import sqlalchemy as sa
from alembic import op

revision = "t2"
down_revision = "t1"


def upgrade() -> None:
    op.add_column("customers", sa.Column("nickname", sa.Text))
    with op.get_context().autocommit_block():
        op.create_index("ix_customers_email", "customers", ["email"], unique=True, postgresql_concurrently=True)
        op.create_index("ix_customers_active_name", "customers", ["full_name"], postgresql_concurrently=True,
                        postgresql_where=sa.text("is_active"))
    op.add_column("customers", sa.Column("note", sa.Text))


def downgrade() -> None:
    op.drop_column("customers", "note")
    with op.get_context().autocommit_block():
        op.drop_index("ix_customers_active_name", table_name="customers", postgresql_concurrently=True)
        op.drop_index("ix_customers_email", table_name="customers", postgresql_concurrently=True)
    op.drop_column("customers", "nickname")
