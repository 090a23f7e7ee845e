"""Settings from the environment, as the template's pydantic Settings reads them."""

import os
from urllib.parse import quote


class Settings:
    POSTGRES_SERVER = os.environ.get("POSTGRES_SERVER", "localhost")
    POSTGRES_PORT = int(os.environ.get("POSTGRES_PORT", "5432"))
    POSTGRES_USER = os.environ.get("POSTGRES_USER", "postgres")
    POSTGRES_PASSWORD = os.environ.get("POSTGRES_PASSWORD", "")
    POSTGRES_DB = os.environ.get("POSTGRES_DB", "app")

    @property
    def SQLALCHEMY_DATABASE_URI(self) -> str:  # noqa: N802 - the template's name
        return (f"postgresql+psycopg://{quote(self.POSTGRES_USER)}:{quote(self.POSTGRES_PASSWORD, safe='')}"
                f"@{self.POSTGRES_SERVER}:{self.POSTGRES_PORT}/{self.POSTGRES_DB}")


settings = Settings()
