-- Retailers (kirana stores, supermarkets), one per RETAILER user.  Credit
-- scores centre on 600; low scores are more often rejected or suspended, and
-- the credit limit follows the score.
INSERT INTO retailers (id, user_id, business_name, city, credit_score, approval_status,
                       credit_limit, created_at, updated_at)
SELECT r.n, u.id,
       CASE WHEN pg_temp.seed_u(r.n, 121) < 0.5 THEN split_part(u.name, ' ', 2)
            ELSE split_part(u.name, ' ', 1) END
           || ' ' || w.store_kinds[1 + pg_temp.seed_skew(r.n, 122, cardinality(w.store_kinds))],
       w.cities[1 + pg_temp.seed_skew(r.n, 123, cardinality(w.cities))],
       r.score,
       CASE WHEN pg_temp.seed_u(r.n, 124) < CASE WHEN r.score < 450 THEN 0.30 ELSE 0.03 END
                THEN 'REJECTED'
            WHEN pg_temp.seed_u(r.n, 125) < CASE WHEN r.score < 500 THEN 0.15 ELSE 0.02 END
                THEN 'SUSPENDED'
            -- recent sign-ups still wait for approval
            WHEN r.n > s.retailers * 0.97 THEN 'PENDING'
            ELSE 'APPROVED' END,
       greatest(0, r.score - 400) * 1000 + 5000 * pg_temp.seed_pick(r.n, 126, 10),
       u.created_at + make_interval(secs => 60 + pg_temp.seed_pick(r.n, 127, 3600)),
       u.updated_at
FROM seed_size AS s
CROSS JOIN seed_words AS w
JOIN users AS u ON u.role = 'RETAILER'
CROSS JOIN LATERAL (
    SELECT u.id - s.staff AS n,
           300 + floor(200 * (pg_temp.seed_u(u.id, 128) + pg_temp.seed_u(u.id, 129)
                              + pg_temp.seed_u(u.id, 130)))::integer AS score
) AS r
ORDER BY r.n;
