-- index_usage_stats: every index on a user table, how often it is used, and what it costs.
-- scans counts index scans since the statistics were last reset; last_used is
-- pg_stat_user_indexes.last_idx_scan on PostgreSQL 16+ (last_used is NULL before 16).
CREATE VIEW ${schema}.index_usage_stats AS
SELECT s.schemaname AS schema,
       s.relname AS table_name,
       s.indexrelname AS index_name,
       s.idx_scan AS scans,
       s.idx_tup_read AS tuples_read,
       s.idx_tup_fetch AS tuples_fetched,
       pg_relation_size(s.indexrelid) AS size_bytes,
       i.indisunique AS is_unique,
       EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = s.indexrelid) AS backs_constraint,
       i.indisvalid AS is_valid,
       ${last_used} AS last_used
FROM pg_stat_user_indexes s
JOIN pg_index i ON i.indexrelid = s.indexrelid
ORDER BY s.idx_scan, pg_relation_size(s.indexrelid) DESC
