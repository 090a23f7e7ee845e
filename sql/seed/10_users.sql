-- Users: a few staff accounts first, then one owner per retailer, then one
-- per vendor (retailers.user_id and vendors.user_id rely on this order).
-- Accounts were opened during the year before the seeded order history.
INSERT INTO users (id, name, email, phone, role, is_active, created_at, updated_at)
SELECT g.n,
       a.first_name || ' ' || a.last_name,
       lower(a.first_name || '.' || a.last_name) || '.' || g.n || '@example.com',
       pg_temp.seed_phone(g.n),
       CASE WHEN g.n <= greatest(1, s.staff / 10) THEN 'ADMIN'
            WHEN g.n <= s.staff THEN 'SUPPORT'
            WHEN g.n <= s.staff + s.retailers THEN 'RETAILER'
            ELSE 'VENDOR' END,
       pg_temp.seed_u(g.n, 103) >= 0.03,
       a.created_at,
       a.created_at + make_interval(secs => pg_temp.seed_pick(g.n, 104, 400 * 86400))
FROM seed_size AS s
CROSS JOIN seed_words AS w
CROSS JOIN generate_series(1, s.staff + s.retailers + s.vendors) AS g(n)
CROSS JOIN LATERAL (
    SELECT w.first_names[1 + pg_temp.seed_skew(g.n, 101, cardinality(w.first_names))] AS first_name,
           CASE WHEN pg_temp.seed_u(g.n, 105) < 0.008
                THEN w.rare_last_names[1 + pg_temp.seed_pick(g.n, 102, cardinality(w.rare_last_names))]
                ELSE w.last_names[1 + pg_temp.seed_skew(g.n, 102, cardinality(w.last_names))]
           END AS last_name,
           pg_temp.seed_ref() - interval '1095 days'
               + make_interval(secs => floor(365 * 86400 * (g.n - 0.5::double precision)
                                             / (s.staff + s.retailers + s.vendors))) AS created_at
) AS a;
