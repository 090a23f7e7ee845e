-- Product search on any fragment of the name (ILIKE '%...%'); needs the pg_trgm extension.
-- verify: SELECT id, name FROM products WHERE name ILIKE '%bhimbetka%' LIMIT 50
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_products_name_trgm
    ON products USING gin (name gin_trgm_ops);
