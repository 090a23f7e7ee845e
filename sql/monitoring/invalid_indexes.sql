-- invalid_indexes: INVALID indexes (a failed or cancelled CREATE INDEX CONCURRENTLY, a
-- failed REINDEX CONCURRENTLY's _ccnew), except one being built right now
-- (pg_stat_progress_create_index).  Writes maintain them, queries never use them.
-- A role without pg_read_all_stats sees another role's build in progress with a NULL
-- relid; such a build holds SHARE UPDATE EXCLUSIVE on its table (pg_locks, visible to
-- every role), so an INVALID index on that table is taken for it, not for a leftover.
CREATE VIEW ${schema}.invalid_indexes AS
SELECT n.nspname AS schema,
       t.relname AS table_name,
       c.relname AS index_name,
       pg_relation_size(c.oid) AS size_bytes,
       pg_get_indexdef(c.oid) AS definition
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid
  AND NOT EXISTS (SELECT 1 FROM pg_stat_progress_create_index p
                  WHERE p.index_relid = i.indexrelid OR (p.index_relid = 0 AND p.relid = i.indrelid))
  AND NOT EXISTS (SELECT 1 FROM pg_stat_progress_create_index p
                  JOIN pg_locks l ON l.pid = p.pid
                  WHERE p.relid IS NULL AND l.locktype = 'relation' AND l.relation = i.indrelid
                    AND l.mode = 'ShareUpdateExclusiveLock' AND l.granted
                    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))
ORDER BY 1, 2, 3
