"""widgets table"""
from alembic import op

revision = "b1"
down_revision = None


def upgrade() -> None:
    op.execute("CREATE TABLE widgets (id int PRIMARY KEY, name text)")


def downgrade() -> None:
    op.execute("DROP TABLE widgets")
