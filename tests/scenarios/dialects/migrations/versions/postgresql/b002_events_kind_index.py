"""events by kind, built concurrently"""
from alembic import op

revision = "b002"
down_revision = "b001"


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index("ix_events_kind", "events", ["kind"], postgresql_concurrently=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index("ix_events_kind", table_name="events", postgresql_concurrently=True)
