-- A retailer's orders in one status tab of the app ("Cancelled", "Delivered"), newest first.
-- verify: SELECT id, order_number, total, created_at FROM orders WHERE retailer_id = 420 AND status = 'CANCELLED' ORDER BY created_at DESC LIMIT 20
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_orders_retailer_id_status_created_at
    ON orders (retailer_id, status, created_at DESC);
