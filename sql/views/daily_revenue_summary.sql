-- Orders and revenue per day and status, for the revenue dashboard.
-- Days are UTC days: a refresh gives the same rows whatever the session's time zone.
CREATE MATERIALIZED VIEW daily_revenue_summary AS
SELECT (created_at AT TIME ZONE 'UTC')::date AS day,
       status,
       count(*) AS order_count,
       sum(total) AS revenue
FROM orders
GROUP BY 1, 2
WITH NO DATA;

-- The key REFRESH ... CONCURRENTLY needs: unique, plain columns, no WHERE.
CREATE UNIQUE INDEX CONCURRENTLY ux_daily_revenue_summary_day_status
    ON daily_revenue_summary (day, status);
