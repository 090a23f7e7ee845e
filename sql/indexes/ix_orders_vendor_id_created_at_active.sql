-- A vendor's open orders, newest first; partial: only the few orders not yet COMPLETED or CANCELLED.
-- verify: SELECT id, order_number, status, total, created_at FROM orders WHERE vendor_id = 42 AND status NOT IN ('COMPLETED', 'CANCELLED') ORDER BY created_at DESC LIMIT 50
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_orders_vendor_id_created_at_active
    ON orders (vendor_id, created_at DESC)
    WHERE status NOT IN ('COMPLETED', 'CANCELLED');
