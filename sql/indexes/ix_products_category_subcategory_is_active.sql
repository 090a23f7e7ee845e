-- Catalogue browsing: the active products of one subcategory.
-- verify: SELECT id, name FROM products WHERE category = 'Hardware' AND subcategory = 'Tools' AND is_active ORDER BY name LIMIT 50
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_products_category_subcategory_is_active
    ON products (category, subcategory, is_active);
