-- Items of one category: 40 of 20,000 rows.
-- verify: SELECT id FROM items WHERE category = 42
CREATE INDEX CONCURRENTLY IF NOT EXISTS items_category_idx ON items (category);
