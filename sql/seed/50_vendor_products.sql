-- Vendor catalogues: each vendor offers a contiguous run of product ids (so,
-- as products are grouped by subcategory, vendors specialise), from 10 up to
-- 280 products, a few big distributors carrying the most.  About four
-- vendors per product on average.  Prices: the list price varies a little
-- by vendor around the product's base price; the vendor's price is 2-20% under it.
INSERT INTO vendor_products (id, product_id, vendor_id, vendor_price, price, stock,
                             is_available, created_at, updated_at)
SELECT row_number() OVER (ORDER BY v.id, k.k),
       p.product_id, v.id,
       (p.price_cents * (80 + pg_temp.seed_pick(p.key, 183, 19)) / 100)::numeric / 100,
       p.price_cents::numeric / 100,
       p.stock, p.stock > 0 AND pg_temp.seed_u(p.key, 184) >= 0.03,
       v.created_at + make_interval(secs => pg_temp.seed_pick(p.key, 185, 86400 * 30)),
       pg_temp.seed_ref() - make_interval(secs => pg_temp.seed_skew(p.key, 186, 86400 * 180))
FROM seed_size AS s
CROSS JOIN vendors AS v
CROSS JOIN LATERAL generate_series(
    0, least(s.products, 10 + 3 * pg_temp.seed_skew(v.id, 181, 91)) - 1) AS k(k)
CROSS JOIN LATERAL (
    SELECT 1 + (pg_temp.seed_pick(v.id, 182, s.products) + k.k) % s.products AS product_id,
           v.id * 1000 + k.k AS key
) AS o
CROSS JOIN LATERAL (
    SELECT o.product_id, o.key,
           -- the product's base price (Rs 20 .. Rs 5,000, mostly low), +0-10% for this vendor
           -- (seed_skew spelt out: see 60_orders.sql)
           (2000 + floor(498000 * pg_temp.seed_u(o.product_id, 187) * pg_temp.seed_u(o.product_id, 187))::bigint)
               * (100 + pg_temp.seed_pick(o.key, 188, 11)) / 100 AS price_cents,
           CASE WHEN pg_temp.seed_u(o.key, 189) < 0.08 THEN 0
                ELSE 1 + pg_temp.seed_skew(o.key, 190, 2000) END::integer AS stock
) AS p
ORDER BY v.id, k.k;
