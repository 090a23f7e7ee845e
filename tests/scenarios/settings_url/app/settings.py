"""The application's settings, from its environment."""

import os

# postgresql+psycopg, +psycopg2 or +asyncpg; the platform's DATABASE_URL when the app has none of its own.
DATABASE_URL = os.environ.get("APP_DATABASE_URL") or os.environ["DATABASE_URL"]
