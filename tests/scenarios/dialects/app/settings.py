"""The application's settings, from its environment."""

import os

DATABASE_URL = os.environ["APP_DATABASE_URL"]
