-- The collections queue: overdue payments, oldest due date first.  Partial on the unpaid
-- states only (a predicate cannot use now(); the query compares due_date with today).
-- verify: SELECT id, order_id, retailer_id, vendor_id, amount - paid_amount AS outstanding, due_date FROM payments WHERE payment_status IN ('UNPAID', 'PARTIAL') AND due_date < DATE '2025-07-01' ORDER BY due_date LIMIT 100
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_payments_due_date_unpaid
    ON payments (due_date)
    WHERE payment_status IN ('UNPAID', 'PARTIAL');
