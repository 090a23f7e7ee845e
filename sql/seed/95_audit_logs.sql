-- Audit log: mostly order and payment events, then catalogue changes and
-- account administration; 10% are the system's own (user_id NULL).  Order
-- and payment events point at the order or payment created at about the same
-- time (both grow along the same curve), a few rows back.
INSERT INTO audit_logs (id, user_id, entity_type, entity_id, action, created_at)
SELECT b.n,
       CASE WHEN pg_temp.seed_u(b.n, 601) >= 0.1
            THEN 1 + pg_temp.seed_skew(b.n, 602, s.staff + s.retailers + s.vendors) END,
       b.entity_type,
       CASE b.entity_type
           WHEN 'ORDER' THEN greatest(1, ceil(b.n::numeric * s.orders / s.audit_logs)::bigint
                                         - pg_temp.seed_pick(b.n, 605, 1 + s.orders / 25000))
           WHEN 'PAYMENT' THEN greatest(1, ceil(b.n::numeric * c.payments / s.audit_logs)::bigint
                                           - pg_temp.seed_pick(b.n, 605, 1 + s.orders / 25000))
           WHEN 'VENDOR_PRODUCT' THEN 1 + pg_temp.seed_pick(b.n, 606, c.vendor_products)
           WHEN 'PRODUCT' THEN 1 + pg_temp.seed_pick(b.n, 606, s.products)
           WHEN 'RETAILER' THEN 1 + pg_temp.seed_skew(b.n, 606, s.retailers)
           WHEN 'VENDOR' THEN 1 + pg_temp.seed_skew(b.n, 606, s.vendors)
           ELSE 1 + pg_temp.seed_skew(b.n, 606, s.staff + s.retailers + s.vendors)
       END,
       CASE b.entity_type
           WHEN 'ORDER' THEN (ARRAY['CREATE', 'STATUS_CHANGE', 'STATUS_CHANGE', 'STATUS_CHANGE',
                                    'UPDATE', 'CANCEL'])[1 + pg_temp.seed_skew(b.n, 607, 6)]
           WHEN 'PAYMENT' THEN (ARRAY['CREATE', 'STATUS_CHANGE', 'REMINDER_SENT'])[1 + pg_temp.seed_pick(b.n, 607, 3)]
           WHEN 'VENDOR_PRODUCT' THEN (ARRAY['STOCK_UPDATE', 'PRICE_CHANGE', 'AVAILABILITY_CHANGE'])
                                      [1 + pg_temp.seed_skew(b.n, 607, 3)]
           WHEN 'PRODUCT' THEN (ARRAY['UPDATE', 'CREATE', 'DEACTIVATE'])[1 + pg_temp.seed_skew(b.n, 607, 3)]
           WHEN 'RETAILER' THEN (ARRAY['UPDATE', 'CREDIT_LIMIT_CHANGE', 'APPROVE', 'SUSPEND'])
                                [1 + pg_temp.seed_skew(b.n, 607, 4)]
           WHEN 'VENDOR' THEN (ARRAY['UPDATE', 'APPROVE', 'SUSPEND'])[1 + pg_temp.seed_skew(b.n, 607, 3)]
           ELSE (ARRAY['LOGIN', 'LOGIN', 'LOGIN', 'PASSWORD_RESET', 'UPDATE'])[1 + pg_temp.seed_pick(b.n, 607, 5)]
       END,
       pg_temp.seed_ts(b.n, s.audit_logs, 603)
FROM seed_size AS s
CROSS JOIN (SELECT (SELECT count(*) FROM payments) AS payments,
                   (SELECT count(*) FROM vendor_products) AS vendor_products) AS c
CROSS JOIN generate_series(1, s.audit_logs) AS g(n)
CROSS JOIN LATERAL (
    SELECT g.n,
           CASE WHEN a.u < 0.55 THEN 'ORDER'
                WHEN a.u < 0.70 THEN 'PAYMENT'
                WHEN a.u < 0.85 THEN 'VENDOR_PRODUCT'
                WHEN a.u < 0.90 THEN 'PRODUCT'
                WHEN a.u < 0.94 THEN 'RETAILER'
                WHEN a.u < 0.96 THEN 'VENDOR'
                ELSE 'USER' END AS entity_type
    FROM (SELECT pg_temp.seed_u(g.n, 604) AS u) AS a
) AS b;
