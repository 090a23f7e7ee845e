-- Credit ledger, derived from the payments so the accounts add up: a DEBIT
-- when goods are bought on credit, a CREDIT for the money received, and for
-- 3% of orders a (negative) scheme-discount ADJUSTMENT a few days later.
-- Ids in time order.
INSERT INTO credit_ledgers (id, retailer_id, vendor_id, order_id, transaction_type, amount,
                            description, created_at)
SELECT row_number() OVER (ORDER BY e.created_at, e.payment_id, e.kind),
       e.retailer_id, e.vendor_id, e.order_id, e.transaction_type, e.amount, e.description,
       e.created_at
FROM (
    SELECT p.id AS payment_id, 1 AS kind, p.retailer_id, p.vendor_id, p.order_id,
           'DEBIT' AS transaction_type, p.amount, 'Goods on credit' AS description,
           p.created_at
    FROM payments AS p
    UNION ALL
    SELECT p.id, 2, p.retailer_id, p.vendor_id, p.order_id,
           'CREDIT', p.paid_amount, 'Payment received by ' || p.payment_method, p.paid_at
    FROM payments AS p
    WHERE p.paid_amount > 0
    UNION ALL
    SELECT p.id, 3, p.retailer_id, p.vendor_id, p.order_id,
           'ADJUSTMENT', -round(p.amount * 0.02, 2), 'Scheme discount 2%',
           least(pg_temp.seed_ref(), p.created_at + interval '72 hours')
    FROM payments AS p
    WHERE pg_temp.seed_u(p.id, 401) < 0.03
) AS e
ORDER BY 1;
