-- invalid_indexes: INVALID indexes (a failed or cancelled CREATE INDEX CONCURRENTLY, a
-- failed REINDEX CONCURRENTLY's _ccnew), except one being built right now.  Writes
-- maintain them, queries never use them.  The one query of INVALID indexes: the view and
-- `dbtune report` leave out those being built; `dbtune maintain` (which leaves them alone),
-- `status` and `check` read them all, with ${building} rendered as true.
-- partitioned: the index of a partitioned table, INVALID until every partition's is
-- attached (maintain rebuilds partitions' indexes, not these).
-- being_built is the online engine's own test (online.catalog.BUILDING_ON): a session in
-- pg_stat_progress_create_index holds the lock a build holds on its table for its whole
-- length (SHARE UPDATE EXCLUSIVE concurrently, SHARE otherwise).  pg_locks and the progress
-- row's pid are visible to every role, so a role without pg_read_all_stats, which sees
-- another role's progress row with a NULL relid, still sees the build.
CREATE VIEW ${schema}.invalid_indexes AS
SELECT schema, table_name, index_name, size_bytes, definition, partitioned, being_built
FROM (
    SELECT n.nspname AS schema,
           t.relname AS table_name,
           c.relname AS index_name,
           pg_relation_size(c.oid) AS size_bytes,
           pg_get_indexdef(c.oid) AS definition,
           c.relkind = 'I' AS partitioned,
           EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_progress_create_index p ON p.pid = l.pid
                   WHERE l.locktype = 'relation' AND l.relation = i.indrelid AND l.granted
                     AND l.mode IN ('ShareUpdateExclusiveLock', 'ShareLock')
                     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                     AND l.pid <> pg_backend_pid()) AS being_built
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_class t ON t.oid = i.indrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE NOT i.indisvalid
) AS invalid
WHERE ${building}
ORDER BY 1, 2, 3
