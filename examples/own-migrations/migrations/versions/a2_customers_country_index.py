"""index customers by country, built concurrently

Revision ID: a2
Revises: a1
"""
from alembic import op

revision = "a2"
down_revision = "a1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The documented Alembic way to build an index without blocking writes.
    with op.get_context().autocommit_block():
        op.create_index("ix_customers_country", "customers", ["country", "created_at"],
                        postgresql_concurrently=True, if_not_exists=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index("ix_customers_country", table_name="customers",
                      postgresql_concurrently=True, if_exists=True)
