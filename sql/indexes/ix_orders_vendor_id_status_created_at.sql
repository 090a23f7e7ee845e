-- A vendor's orders in one status, newest first (the vendor dashboard's tabs).
-- verify: SELECT id, order_number, retailer_id, total, created_at FROM orders WHERE vendor_id = 42 AND status = 'COMPLETED' ORDER BY created_at DESC LIMIT 20
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_orders_vendor_id_status_created_at
    ON orders (vendor_id, status, created_at DESC);
