-- Each retailer's outstanding dues, overdue payments and credit used against the limit.
-- Overdue means unpaid (or partly paid) past its due date, as of the refresh.
CREATE MATERIALIZED VIEW retailer_credit_summary AS
SELECT r.id AS retailer_id,
       r.business_name,
       r.credit_limit,
       coalesce(p.outstanding, 0) AS outstanding_dues,
       coalesce(p.overdue_count, 0) AS overdue_payments,
       coalesce(p.overdue_amount, 0) AS overdue_amount,
       CASE WHEN r.credit_limit > 0 THEN round(coalesce(p.outstanding, 0) / r.credit_limit, 4) END
           AS credit_used_ratio
FROM retailers r
LEFT JOIN (
    SELECT retailer_id,
           sum(amount - paid_amount) AS outstanding,
           count(*) FILTER (WHERE due_date < current_date) AS overdue_count,
           coalesce(sum(amount - paid_amount) FILTER (WHERE due_date < current_date), 0) AS overdue_amount
    FROM payments
    WHERE payment_status IN ('UNPAID', 'PARTIAL')
    GROUP BY retailer_id
) p ON p.retailer_id = r.id
WITH NO DATA;

CREATE UNIQUE INDEX CONCURRENTLY ux_retailer_credit_summary_retailer_id
    ON retailer_credit_summary (retailer_id);
