"""events' source, under a lock_timeout of the revision's own"""
import sqlalchemy as sa
from alembic import op

revision = "b003"
down_revision = "b002"


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.add_column("events", sa.Column("source", sa.Text))


def downgrade() -> None:
    op.drop_column("events", "source")
