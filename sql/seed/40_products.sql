-- Products: ids run through the taxonomy in order (a catalogue imported
-- category by category), sized by each subcategory's weight.  Names read
-- "<brand> [<adjective>] <qualifier> <noun> <unit>", e.g. "Kaveri Premium
-- Basmati Rice 5 kg": common brands and words repeat, a few regional brands
-- are rare, so trigram searches have both broad and selective fragments.
INSERT INTO products (id, sku, name, brand, category, subcategory, unit, is_active,
                      created_at, updated_at)
SELECT g.n,
       'SKU-' || lpad(g.n::text, 8, '0'),
       a.brand
           || CASE WHEN pg_temp.seed_u(g.n, 162) < 0.4
                   THEN ' ' || w.adjectives[1 + pg_temp.seed_pick(g.n, 163, cardinality(w.adjectives))]
                   ELSE '' END
           || ' ' || t.qualifiers[1 + pg_temp.seed_skew(g.n, 164, cardinality(t.qualifiers))]
           || ' ' || t.nouns[1 + pg_temp.seed_skew(g.n, 165, cardinality(t.nouns))]
           || ' ' || a.unit,
       a.brand, t.category, t.subcategory, a.unit,
       -- discontinued products stay in the catalogue, inactive
       pg_temp.seed_u(g.n, 167) >= 0.05,
       a.created_at,
       a.created_at + make_interval(secs => pg_temp.seed_pick(g.n, 168, 300 * 86400))
FROM seed_size AS s
CROSS JOIN seed_words AS w
CROSS JOIN generate_series(1, s.products) AS g(n)
JOIN seed_taxonomy AS t
  ON t.lo <= (g.n - 0.5::double precision) / s.products * t.total
 AND (g.n - 0.5::double precision) / s.products * t.total < t.hi
CROSS JOIN LATERAL (
    SELECT CASE WHEN pg_temp.seed_u(g.n, 169) < 0.005
                THEN w.rare_brands[1 + pg_temp.seed_pick(g.n, 161, cardinality(w.rare_brands))]
                ELSE w.brands[1 + pg_temp.seed_skew(g.n, 161, cardinality(w.brands))]
           END AS brand,
           t.units[1 + pg_temp.seed_pick(g.n, 166, cardinality(t.units))] AS unit,
           -- added over the year before the history and its first 18 months
           pg_temp.seed_ref() - interval '1095 days'
               + make_interval(secs => floor(910 * 86400 * (g.n - 0.5::double precision)
                                             / s.products)) AS created_at
) AS a
ORDER BY g.n;
