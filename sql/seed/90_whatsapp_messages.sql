-- Inbound WhatsApp messages: mostly retailers (the same skew as orders)
-- ordering, asking about orders or reporting payments; 8% come from numbers
-- that belong to no user.  Nearly all are processed: what is left is the
-- evening batch of the last day and 0.3% that failed to parse and wait for a
-- person.
INSERT INTO whatsapp_messages (id, "from", body, is_processed, processed_at, created_at)
SELECT b.n, b.sender, b.body, b.is_processed,
       CASE WHEN b.is_processed
            THEN b.created_at + make_interval(secs => 2 + pg_temp.seed_skew(b.n, 507, 600)) END,
       b.created_at
FROM seed_size AS s
CROSS JOIN generate_series(1, s.whatsapp_messages) AS g(n)
JOIN seed_taxonomy AS t
  ON t.id = 1 + pg_temp.seed_pick(g.n, 503, (SELECT count(*) FROM seed_taxonomy))
CROSS JOIN LATERAL (
    SELECT g.n,
           pg_temp.seed_ts(g.n, s.whatsapp_messages, 501) AS created_at,
           CASE WHEN pg_temp.seed_u(g.n, 502) < 0.08
                THEN pg_temp.seed_phone(s.staff + s.retailers + s.vendors + g.n)
                ELSE pg_temp.seed_phone(s.staff + 1 + pg_temp.seed_skew(g.n, 504, s.retailers))
           END AS sender,
           CASE pg_temp.seed_pick(g.n, 505, 10)
               WHEN 0 THEN 'Need ' || (1 + pg_temp.seed_skew(g.n, 506, 50)) || ' '
                           || t.nouns[1 + pg_temp.seed_pick(g.n, 508, cardinality(t.nouns))]
                           || ' urgently, deliver by tomorrow'
               WHEN 1 THEN 'What is the status of my order? ORD ref '
                           || lpad((1 + pg_temp.seed_pick(g.n, 509, 9999999))::text, 7, '0')
               WHEN 2 THEN 'Payment of Rs ' || (500 + pg_temp.seed_skew(g.n, 510, 100000))
                           || ' done by UPI, ref ' || (100000000000 + pg_temp.seed_pick(g.n, 511, 899999999999))
               WHEN 3 THEN 'Please share today''s rate list for ' || t.subcategory
               WHEN 4 THEN 'Cancel my last order please'
               WHEN 5 THEN 'Hello'
               ELSE 'Please send ' || (1 + pg_temp.seed_skew(g.n, 506, 50)) || ' x '
                    || t.qualifiers[1 + pg_temp.seed_pick(g.n, 512, cardinality(t.qualifiers))] || ' '
                    || t.nouns[1 + pg_temp.seed_pick(g.n, 508, cardinality(t.nouns))] || ' '
                    || t.units[1 + pg_temp.seed_pick(g.n, 513, cardinality(t.units))]
           END AS body,
           NOT (pg_temp.seed_u(g.n, 514) < 0.003
                OR pg_temp.seed_ts(g.n, s.whatsapp_messages, 501)
                   >= pg_temp.seed_ref() - interval '11 hours') AS is_processed
) AS b
ORDER BY b.n;
