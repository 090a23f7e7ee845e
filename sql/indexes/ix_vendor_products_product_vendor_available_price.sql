-- A product's offers: which vendors have it available and at what price (order checkout, price comparison).
-- verify: SELECT vendor_id, price FROM vendor_products WHERE product_id = 1234 AND is_available ORDER BY price LIMIT 10
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_vendor_products_product_vendor_available_price
    ON vendor_products (product_id, vendor_id, is_available, price);
