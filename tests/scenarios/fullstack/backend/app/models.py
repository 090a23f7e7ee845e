"""The application's tables (the template declares them with SQLModel)."""

import sqlalchemy as sa

metadata = sa.MetaData()

user = sa.Table("user", metadata, sa.Column("id", sa.Uuid, primary_key=True),
                sa.Column("email", sa.String(255), nullable=False), sa.Column("full_name", sa.String(255)))
