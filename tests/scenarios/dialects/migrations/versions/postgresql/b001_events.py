"""events"""
import sqlalchemy as sa
from alembic import op

revision = "b001"
down_revision = None


def upgrade() -> None:
    op.create_table("events", sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
                    sa.Column("kind", sa.Text, nullable=False))
    op.execute("INSERT INTO events (kind) SELECT 'kind ' || (g % 7) FROM generate_series(1, 100) g")


def downgrade() -> None:
    op.drop_table("events")
