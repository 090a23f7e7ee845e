-- A vendor's product list (their catalogue page: price, stock, availability) from the index alone.
-- verify: SELECT product_id, vendor_price, stock, is_available FROM vendor_products WHERE vendor_id = 42 ORDER BY product_id LIMIT 50
-- expect-node: Index Only Scan
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_vendor_products_vendor_id_product_id_covering
    ON vendor_products (vendor_id, product_id)
    INCLUDE (vendor_price, stock, is_available);
