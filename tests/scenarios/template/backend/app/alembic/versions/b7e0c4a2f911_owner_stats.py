"""Items per owner, and the owner lookup, built without blocking writes

Revision ID: b7e0c4a2f911
Revises: 1a31ce608336
"""
from alembic import op

revision = "b7e0c4a2f911"
down_revision = "1a31ce608336"


def upgrade() -> None:
    op.execute("CREATE MATERIALIZED VIEW item_owner_stats AS SELECT owner_id, count(*) AS items FROM item "
               "GROUP BY owner_id")
    # The view is new, and its unique index lets it refresh concurrently from now on.
    op.create_index("ix_item_owner_stats_owner_id", "item_owner_stats", ["owner_id"], unique=True)
    with op.get_context().autocommit_block():
        op.create_index("ix_item_owner_id", "item", ["owner_id"], postgresql_concurrently=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index("ix_item_owner_id", table_name="item", postgresql_concurrently=True)
    op.execute("DROP MATERIALIZED VIEW item_owner_stats")
