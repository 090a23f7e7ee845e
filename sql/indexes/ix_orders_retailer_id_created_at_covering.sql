-- The retailer's order list (newest first, with status and amounts) from the index alone.
-- verify: SELECT order_number, status, payment_status, total, due_amount, created_at FROM orders WHERE retailer_id = 420 ORDER BY created_at DESC LIMIT 20
-- expect-node: Index Only Scan
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_orders_retailer_id_created_at_covering
    ON orders (retailer_id, created_at DESC)
    INCLUDE (order_number, status, payment_status, total, due_amount);
