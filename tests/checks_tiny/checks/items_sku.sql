-- Price by SKU, answered from the index alone (price is INCLUDEd).
-- verify: SELECT price FROM items WHERE sku = 'sku-77'
-- verify: SELECT sku, price FROM items WHERE sku IN ('sku-1', 'sku-2');
-- expect-node: Index Only Scan
CREATE INDEX CONCURRENTLY IF NOT EXISTS "items_sku_idx"
    ON public.items (sku) INCLUDE (price);
