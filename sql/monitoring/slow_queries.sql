-- slow_queries: the statements that cost the server the most time, from pg_stat_statements.
-- One row per statement (per user and database), ordered by total time; filter on mean_ms
-- (dbtune report's default threshold is 100 ms).  total_ms and mean_ms include planning
-- time where pg_stat_statements.track_planning is on.
-- The dollar-brace placeholders are filled by dbtune from the columns the installed extension has
-- (PostgreSQL 13 to 18): plan_ms is total_plan_time or 0, read_ms is
-- shared_blk_read_time (17+) or blk_read_time (13 to 16).
CREATE VIEW ${schema}.slow_queries AS
SELECT s.queryid,
       r.rolname AS username,
       d.datname AS database,
       s.calls,
       round((s.total_exec_time + ${plan_ms})::numeric, 2) AS total_ms,
       round(((s.total_exec_time + ${plan_ms}) / nullif(s.calls, 0))::numeric, 2) AS mean_ms,
       s.rows,
       round(s.shared_blks_hit::numeric / nullif(s.shared_blks_hit + s.shared_blks_read, 0), 4) AS hit_ratio,
       s.temp_blks_written,
       round(${read_ms}::numeric, 2) AS read_ms,
       s.query,
       NULL::text AS note
FROM ${pgss}.pg_stat_statements s
LEFT JOIN pg_roles r ON r.oid = s.userid
LEFT JOIN pg_database d ON d.oid = s.dbid
ORDER BY s.total_exec_time + ${plan_ms} DESC
