-- missing_indexes: tables read mostly by sequential scans, the candidates for an index.
-- Every user table with more sequential than index scans since the statistics reset;
-- `dbtune report missing-indexes` keeps the large ones (--min-table-mb, default 10).
CREATE VIEW ${schema}.missing_indexes AS
SELECT s.schemaname AS schema,
       s.relname AS table_name,
       s.seq_scan,
       s.seq_tup_read,
       coalesce(s.idx_scan, 0) AS idx_scan,
       round(100.0 * s.seq_scan / nullif(s.seq_scan + coalesce(s.idx_scan, 0), 0), 1) AS seq_scan_pct,
       s.seq_tup_read / nullif(s.seq_scan, 0) AS rows_per_seq_scan,
       pg_relation_size(s.relid) AS size_bytes
FROM pg_stat_user_tables s
WHERE s.seq_scan > coalesce(s.idx_scan, 0)
ORDER BY s.seq_tup_read DESC
