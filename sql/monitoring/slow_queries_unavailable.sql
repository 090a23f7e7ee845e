-- slow_queries, when pg_stat_statements cannot answer: one row that says what to configure.
-- dbtune creates this instead of slow_queries.sql when the extension is not installed in
-- this database or not in shared_preload_libraries; `dbtune report --install-views`
-- replaces it once the server is configured.
CREATE VIEW ${schema}.slow_queries AS
SELECT NULL::bigint AS queryid, NULL::name AS username, NULL::name AS database, NULL::bigint AS calls,
       NULL::numeric AS total_ms, NULL::numeric AS mean_ms, NULL::bigint AS rows, NULL::numeric AS hit_ratio,
       NULL::bigint AS temp_blks_written, NULL::numeric AS read_ms, NULL::text AS query,
       ${note}::text AS note
