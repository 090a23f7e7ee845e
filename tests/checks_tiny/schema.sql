-- The tiny schema behind tests/test_verify.py: one table, two indexes, rows
-- enough that an equality lookup is cheaper through an index than a seq scan.
CREATE TABLE items (
    id bigint PRIMARY KEY,
    category integer NOT NULL,
    sku text NOT NULL,
    price numeric NOT NULL
);
CREATE INDEX items_category_idx ON items (category);
CREATE INDEX items_sku_idx ON items (sku) INCLUDE (price);
