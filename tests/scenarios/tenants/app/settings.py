"""The application's settings, from its environment, as a twelve-factor app reads them."""

import os

DATABASE_URL = os.environ["APP_DATABASE_URL"]  # any driver: postgresql+psycopg, +psycopg2, +asyncpg
TENANTS = [t for t in os.environ.get("APP_TENANTS", "tenant1,tenant2").split(",") if t]
