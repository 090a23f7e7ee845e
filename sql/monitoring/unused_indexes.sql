-- unused_indexes: indexes never scanned since the statistics were reset, that nothing
-- requires (not unique, not backing a constraint), larger than 1 MB.  Each costs writes
-- and space; check the stats reset time before dropping (dbtune report does).  fix is the
-- DROP, the name schema-qualified and quoted as quote_ident does.
CREATE VIEW ${schema}.unused_indexes AS
SELECT s.schemaname AS schema,
       s.relname AS table_name,
       s.indexrelname AS index_name,
       pg_relation_size(s.indexrelid) AS size_bytes,
       pg_get_indexdef(s.indexrelid) AS definition,
       'DROP INDEX CONCURRENTLY ' || quote_ident(s.schemaname) || '.' || quote_ident(s.indexrelname) AS fix
FROM pg_stat_user_indexes s
JOIN pg_index i ON i.indexrelid = s.indexrelid
WHERE s.idx_scan = 0
  AND NOT i.indisunique
  AND i.indisvalid
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = s.indexrelid)
  AND pg_relation_size(s.indexrelid) > 1024 * 1024
ORDER BY pg_relation_size(s.indexrelid) DESC
