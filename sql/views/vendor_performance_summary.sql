-- Each vendor's orders, completion rate, revenue and time from order to completion.
-- Revenue counts delivered and completed orders; the time to completion is the
-- last update of a COMPLETED order (when it was completed) less its creation.
CREATE MATERIALIZED VIEW vendor_performance_summary AS
SELECT v.id AS vendor_id,
       v.business_name,
       count(o.id) AS order_count,
       count(o.id) FILTER (WHERE o.status = 'COMPLETED') AS completed_count,
       round(count(o.id) FILTER (WHERE o.status = 'COMPLETED')::numeric / nullif(count(o.id), 0), 4)
           AS completion_rate,
       coalesce(sum(o.total) FILTER (WHERE o.status IN ('DELIVERED', 'COMPLETED')), 0) AS revenue,
       avg(o.updated_at - o.created_at) FILTER (WHERE o.status = 'COMPLETED') AS avg_time_to_complete
FROM vendors v
LEFT JOIN orders o ON o.vendor_id = v.id
GROUP BY v.id, v.business_name
WITH NO DATA;

CREATE UNIQUE INDEX CONCURRENTLY ux_vendor_performance_summary_vendor_id
    ON vendor_performance_summary (vendor_id);
