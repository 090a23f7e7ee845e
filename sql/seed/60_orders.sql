-- Orders: two years of history, growing over time, ids in time order.
--
-- Activity is skewed: a few retailers place many orders, and each retailer
-- buys from up to five preferred vendors (mostly the first), which are
-- themselves skewed towards popular vendors.  Status follows age: everything
-- older than a month is settled (mostly COMPLETED, 5% CANCELLED, a few stuck),
-- the last days hold the open orders, including those waiting for the vendor
-- to accept them.  45% of orders are bought on the vendor's credit line; the
-- payment status of those follows their credit terms (see 00_setup.sql).
--
-- The OFFSET 0 subqueries are evaluated once per row; without them the
-- planner would paste the status expression into every place that uses it.
INSERT INTO orders (id, order_number, retailer_id, vendor_id, status, payment_status,
                    total, due_amount, created_at, updated_at)
SELECT c.n,
       'ORD-' || to_char(c.created_at, 'YYYYMMDD') || '-' || lpad(c.n::text, 7, '0'),
       c.retailer_id,
       -- the retailer's first to fifth preferred vendor, vendors skewed by popularity
       -- (seed_skew spelt out: a SQL function that uses a parameter twice is not
       -- inlined when its argument is an expression, and a call per row is slow)
       1 + floor(c.vendors * pg_temp.seed_u(c.vendor_key, 205) * pg_temp.seed_u(c.vendor_key, 205))::bigint,
       c.status,
       c.payment_status,
       c.total_cents::numeric / 100,
       CASE c.payment_status
           WHEN 'UNPAID' THEN CASE WHEN c.status = 'CANCELLED' THEN 0 ELSE c.total_cents END
           -- 20-80% paid so far
           WHEN 'PARTIAL' THEN c.total_cents - c.total_cents * (20 + pg_temp.seed_pick(c.n, 211, 61)) / 100
           ELSE 0 END::numeric / 100,
       c.created_at,
       CASE WHEN c.status IN ('PENDING', 'PENDING_VENDOR_ACCEPTANCE') THEN c.created_at
            ELSE least(pg_temp.seed_ref(),
                       c.created_at + make_interval(secs => 600 + pg_temp.seed_pick(c.n, 212, 15 * 86400)))
       END
FROM (
    SELECT b.*,
           CASE
               WHEN b.status = 'CANCELLED' THEN
                   CASE WHEN NOT b.on_credit AND pg_temp.seed_u(b.n, 213) < 0.3
                        THEN 'REFUNDED' ELSE 'UNPAID' END
               -- prepaid orders are paid before the vendor sees them
               WHEN b.status IN ('PENDING', 'PENDING_VENDOR_ACCEPTANCE') THEN
                   CASE WHEN NOT b.on_credit AND pg_temp.seed_u(b.n, 213) < 0.5
                        THEN 'PAID' ELSE 'UNPAID' END
               WHEN b.on_credit THEN
                   CASE WHEN pg_temp.seed_order_defaults(b.n) THEN
                            CASE WHEN pg_temp.seed_u(b.n, 213) < 0.4 THEN 'PARTIAL' ELSE 'UNPAID' END
                        WHEN b.created_at + make_interval(secs => pg_temp.seed_order_pay_delay_s(b.n))
                             <= pg_temp.seed_ref() THEN 'PAID'
                        WHEN pg_temp.seed_u(b.n, 213) < 0.2 THEN 'PARTIAL'
                        ELSE 'UNPAID' END
               WHEN b.status = 'COMPLETED' THEN 'PAID'
               -- prepaid, or cash on delivery not yet collected
               WHEN pg_temp.seed_u(b.n, 213) < 0.6 THEN 'PAID'
               ELSE 'UNPAID'
           END AS payment_status
    FROM (
        SELECT g.n, s.vendors,
               pg_temp.seed_ts(g.n, s.orders, 201) AS created_at,
               a.retailer_id,
               a.retailer_id * 8 + pg_temp.seed_skew(g.n, 204, 5) AS vendor_key,
               -- Rs 500 .. Rs 200,000, median about Rs 25,000
               50000 + floor(19950000 * pg_temp.seed_u(g.n, 209) * pg_temp.seed_u(g.n, 209)
                             * pg_temp.seed_u(g.n, 209))::bigint AS total_cents,
               pg_temp.seed_order_on_credit(g.n) AS on_credit,
               CASE
                   WHEN a.age_days >= 30 THEN CASE
                       WHEN a.u < 0.050 THEN 'CANCELLED'
                       WHEN a.u < 0.055 THEN 'DELIVERED'                  -- never confirmed
                       WHEN a.u < 0.056 THEN 'PENDING_VENDOR_ACCEPTANCE'  -- forgotten by the vendor
                       ELSE 'COMPLETED' END
                   WHEN a.age_days >= 7 THEN CASE
                       WHEN a.u < 0.05 THEN 'CANCELLED'
                       WHEN a.u < 0.30 THEN 'DELIVERED'
                       WHEN a.u < 0.33 THEN 'SHIPPED'
                       ELSE 'COMPLETED' END
                   WHEN a.age_days >= 2 THEN CASE
                       WHEN a.u < 0.05 THEN 'CANCELLED'
                       WHEN a.u < 0.07 THEN 'PENDING_VENDOR_ACCEPTANCE'
                       WHEN a.u < 0.12 THEN 'ACCEPTED'
                       WHEN a.u < 0.27 THEN 'PROCESSING'
                       WHEN a.u < 0.62 THEN 'SHIPPED'
                       WHEN a.u < 0.92 THEN 'DELIVERED'
                       ELSE 'COMPLETED' END
                   ELSE CASE
                       WHEN a.u < 0.05 THEN 'CANCELLED'
                       WHEN a.u < 0.15 THEN 'PENDING'
                       WHEN a.u < 0.50 THEN 'PENDING_VENDOR_ACCEPTANCE'
                       WHEN a.u < 0.75 THEN 'ACCEPTED'
                       WHEN a.u < 0.95 THEN 'PROCESSING'
                       ELSE 'SHIPPED' END
               END AS status
        FROM seed_size AS s
        CROSS JOIN generate_series(1, s.orders) AS g(n)
        CROSS JOIN LATERAL (
            SELECT 1 + pg_temp.seed_skew(g.n, 202, s.retailers) AS retailer_id,
                   729 - pg_temp.seed_day(g.n, s.orders) AS age_days,
                   pg_temp.seed_u(g.n, 203) AS u
        ) AS a
        OFFSET 0
    ) AS b
    OFFSET 0
) AS c;
