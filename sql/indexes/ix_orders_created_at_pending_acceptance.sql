-- Escalation job: orders a vendor has not accepted for too long, oldest first; partial: only those orders.
-- verify: SELECT id, order_number, vendor_id, retailer_id, created_at FROM orders WHERE status = 'PENDING_VENDOR_ACCEPTANCE' AND created_at < TIMESTAMPTZ '2025-06-29 00:00:00+00' ORDER BY created_at LIMIT 100
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_orders_created_at_pending_acceptance
    ON orders (created_at)
    WHERE status = 'PENDING_VENDOR_ACCEPTANCE';
