-- Payments: one per credit-line order the vendor has accepted (not
-- cancelled), due after the order's credit terms.  paid_amount and
-- payment_status mirror the order; paid_at is the last payment received.
-- Overdue = UNPAID or PARTIAL with due_date before the reference date: the
-- few defaulters, plus those a few days late.
INSERT INTO payments (id, order_id, retailer_id, vendor_id, amount, paid_amount,
                      payment_status, payment_method, due_date, paid_at, created_at, updated_at)
SELECT row_number() OVER (ORDER BY o.id),
       o.id, o.retailer_id, o.vendor_id, o.total, o.total - o.due_amount,
       o.payment_status,
       CASE WHEN o.payment_status <> 'UNPAID' THEN
           (ARRAY['UPI', 'UPI', 'UPI', 'BANK_TRANSFER', 'BANK_TRANSFER', 'CHEQUE', 'CASH'])
               [1 + pg_temp.seed_pick(o.id, 301, 7)] END,
       (o.created_at + make_interval(secs => pg_temp.seed_order_terms_days(o.id) * 86400))::date,
       p.paid_at,
       o.created_at,
       coalesce(p.paid_at, o.created_at)
FROM orders AS o
CROSS JOIN LATERAL (
    SELECT CASE o.payment_status
               WHEN 'PAID' THEN o.created_at + make_interval(secs => pg_temp.seed_order_pay_delay_s(o.id))
               WHEN 'PARTIAL' THEN least(pg_temp.seed_ref(), o.created_at
                   + make_interval(secs => pg_temp.seed_order_pay_delay_s(o.id) / 2))
           END AS paid_at
) AS p
WHERE pg_temp.seed_order_on_credit(o.id)
  AND o.status NOT IN ('CANCELLED', 'PENDING', 'PENDING_VENDOR_ACCEPTANCE')
ORDER BY o.id;
