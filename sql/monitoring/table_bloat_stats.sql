-- table_bloat_stats: dead tuples and estimated bloat per user table.
-- The estimate compares the table's pages with the pages its live rows need: row width
-- from the planner's statistics (per-column average width, plus the 24-byte tuple header
-- and 4-byte line pointer), 24-byte page headers and the table's fillfactor.  Tables never
-- analyzed have no statistics: bloat columns are NULL and statistics says so.  widths
-- is pg_statistic (when the view's owner may read it) or pg_stats.
CREATE VIEW ${schema}.table_bloat_stats AS
WITH widths AS (
    ${widths}
), sizes AS (
    SELECT c.oid, n.nspname AS schema, c.relname AS table_name, c.relpages::bigint AS pages,
           greatest(c.reltuples, 0)::bigint AS est_rows,
           current_setting('block_size')::bigint AS block_size,
           coalesce((SELECT substring(o FROM 'fillfactor=([0-9]+)')::int
                     FROM unnest(c.reloptions) o WHERE o LIKE 'fillfactor=%'), 100) AS fillfactor,
           w.row_width
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN widths w ON w.relid = c.oid
    WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg_toast%'
), estimate AS (
    SELECT sz.*,
           CASE WHEN sz.row_width IS NULL THEN NULL
                ELSE ceil(sz.est_rows * (sz.row_width + 28)
                          / ((sz.block_size - 24) * sz.fillfactor / 100.0))::bigint END AS expected_pages
    FROM sizes sz
)
SELECT e.schema,
       e.table_name,
       st.n_live_tup AS live_tuples,
       st.n_dead_tup AS dead_tuples,
       round(100.0 * st.n_dead_tup / nullif(st.n_live_tup + st.n_dead_tup, 0), 1) AS dead_pct,
       CASE WHEN e.expected_pages IS NULL THEN NULL
            ELSE greatest(e.pages - e.expected_pages, 0) * e.block_size END AS bloat_bytes,
       CASE WHEN e.expected_pages IS NULL OR e.pages = 0 THEN NULL
            ELSE round(100.0 * greatest(e.pages - e.expected_pages, 0) / e.pages, 1) END AS bloat_pct,
       CASE WHEN e.row_width IS NULL THEN 'no statistics' ELSE 'estimated' END AS statistics,
       pg_total_relation_size(e.oid) AS total_bytes,
       st.last_vacuum,
       st.last_autovacuum,
       st.last_analyze,
       st.last_autoanalyze
FROM estimate e
LEFT JOIN pg_stat_all_tables st ON st.relid = e.oid
ORDER BY bloat_bytes DESC NULLS LAST, dead_tuples DESC NULLS LAST
