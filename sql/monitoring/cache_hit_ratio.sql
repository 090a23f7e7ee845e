-- cache_hit_ratio: how often table and index reads found their page in shared_buffers,
-- for this database's user tables, since the statistics were reset.  Under 0.99 on a
-- busy OLTP database usually means shared_buffers (or RAM) is too small for the working set.
CREATE VIEW ${schema}.cache_hit_ratio AS
SELECT 'tables'::text AS kind,
       sum(heap_blks_hit)::bigint AS hits,
       sum(heap_blks_read)::bigint AS reads,
       round(sum(heap_blks_hit)::numeric / nullif(sum(heap_blks_hit) + sum(heap_blks_read), 0), 4) AS ratio
FROM pg_statio_user_tables
UNION ALL
SELECT 'indexes',
       sum(idx_blks_hit)::bigint,
       sum(idx_blks_read)::bigint,
       round(sum(idx_blks_hit)::numeric / nullif(sum(idx_blks_hit) + sum(idx_blks_read), 0), 4)
FROM pg_statio_user_indexes
