"""a migration whose second statement fails"""
from alembic import op

revision = "b2"
down_revision = "b1"


def upgrade() -> None:
    op.execute("ALTER TABLE widgets ADD COLUMN colour text")
    op.execute("UPDATE widgets SET colour = missing_column")


def downgrade() -> None:
    op.execute("ALTER TABLE widgets DROP COLUMN colour")
