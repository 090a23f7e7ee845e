-- duplicate_indexes: an index another index on the same table makes redundant.
-- "identical": same method, columns, operator classes, expressions and predicate;
-- "prefix": its columns are the leading columns of the other, with the same method,
-- operator classes and predicate and no expressions.  A unique or constraint index is
-- never the one to drop.  fix names the index schema-qualified and quoted as quote_ident
-- does (a mixed-case or non-ASCII name stays that index), whatever the reader's search_path.
CREATE VIEW ${schema}.duplicate_indexes AS
WITH idx AS (
    SELECT i.indexrelid, i.indrelid, c.relam, i.indkey::text AS cols, i.indclass::text AS classes,
           quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS qualified,
           coalesce(pg_get_expr(i.indexprs, i.indrelid), '') AS exprs,
           coalesce(pg_get_expr(i.indpred, i.indrelid), '') AS pred,
           i.indisunique OR EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) AS required
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE i.indisvalid AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
)
SELECT n.nspname AS schema,
       t.relname AS table_name,
       a.indexrelid::regclass::text AS redundant_index,
       b.indexrelid::regclass::text AS covered_by,
       CASE WHEN a.cols = b.cols THEN 'identical' ELSE 'prefix' END AS reason,
       pg_relation_size(a.indexrelid) AS redundant_bytes,
       'DROP INDEX CONCURRENTLY ' || a.qualified AS fix
FROM idx a
JOIN idx b ON b.indrelid = a.indrelid AND b.indexrelid <> a.indexrelid AND b.relam = a.relam
          AND b.pred = a.pred AND a.exprs = '' AND b.exprs = ''
JOIN pg_class t ON t.oid = a.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE NOT a.required
  AND ((a.cols = b.cols AND a.classes = b.classes AND (b.required OR a.indexrelid > b.indexrelid))
       OR (b.cols LIKE a.cols || ' %' AND b.classes LIKE a.classes || ' %'))
UNION ALL
SELECT n.nspname, t.relname, a.indexrelid::regclass::text, b.indexrelid::regclass::text, 'identical',
       pg_relation_size(a.indexrelid), 'DROP INDEX CONCURRENTLY ' || a.qualified
FROM idx a
JOIN idx b ON b.indrelid = a.indrelid AND b.indexrelid <> a.indexrelid AND b.relam = a.relam
          AND b.pred = a.pred AND a.exprs <> '' AND a.exprs = b.exprs AND a.cols = b.cols AND a.classes = b.classes
JOIN pg_class t ON t.oid = a.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE NOT a.required AND (b.required OR a.indexrelid > b.indexrelid)
ORDER BY 6 DESC
