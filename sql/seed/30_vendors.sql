-- Vendors (distributors, wholesalers), one per VENDOR user.  Ratings cluster
-- around 4.0; a handful are excellent.
INSERT INTO vendors (id, user_id, business_name, city, rating, approval_status,
                     created_at, updated_at)
SELECT v.n, u.id,
       CASE WHEN pg_temp.seed_u(v.n, 141) < 0.4 THEN split_part(u.name, ' ', 2)
            WHEN pg_temp.seed_u(v.n, 141) < 0.7 THEN w.brands[1 + pg_temp.seed_skew(v.n, 142, cardinality(w.brands))]
            ELSE w.cities[1 + pg_temp.seed_skew(v.n, 143, cardinality(w.cities))] END
           || ' ' || w.vendor_kinds[1 + pg_temp.seed_pick(v.n, 144, cardinality(w.vendor_kinds))],
       w.cities[1 + pg_temp.seed_skew(v.n, 145, cardinality(w.cities))],
       -- in hundredths: 3.00 .. 5.00 around 4.00; about 2% rate 4.80 or better
       (300 + floor(100 * (pg_temp.seed_u(v.n, 146) + pg_temp.seed_u(v.n, 150))))::numeric / 100,
       CASE WHEN pg_temp.seed_u(v.n, 147) < 0.04 THEN 'REJECTED'
            WHEN pg_temp.seed_u(v.n, 148) < 0.03 THEN 'SUSPENDED'
            WHEN v.n > s.vendors * 0.95 THEN 'PENDING'
            ELSE 'APPROVED' END,
       u.created_at + make_interval(secs => 60 + pg_temp.seed_pick(v.n, 149, 3600)),
       u.updated_at
FROM seed_size AS s
CROSS JOIN seed_words AS w
JOIN users AS u ON u.role = 'VENDOR'
CROSS JOIN LATERAL (SELECT u.id - s.staff - s.retailers AS n) AS v
ORDER BY v.n;
