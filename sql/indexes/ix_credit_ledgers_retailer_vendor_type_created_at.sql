-- The account statement between one retailer and one vendor, by transaction type and date.
-- verify: SELECT id, order_id, amount, created_at FROM credit_ledgers WHERE retailer_id = 200 AND vendor_id = 1 AND transaction_type = 'DEBIT' ORDER BY created_at DESC LIMIT 20
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_credit_ledgers_retailer_vendor_type_created_at
    ON credit_ledgers (retailer_id, vendor_id, transaction_type, created_at);
