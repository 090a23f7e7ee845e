-- User search (support, admin) on any fragment of the name; needs the pg_trgm extension.
-- verify: SELECT id, name, email FROM users WHERE name ILIKE '%ozhukayil%' LIMIT 20
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_users_name_trgm
    ON users USING gin (name gin_trgm_ops);
