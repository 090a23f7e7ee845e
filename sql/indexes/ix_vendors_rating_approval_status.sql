-- "Top vendors": the best-rated approved vendors.
-- verify: SELECT id, business_name, rating FROM vendors WHERE rating >= 4.50 AND approval_status = 'APPROVED' ORDER BY rating DESC LIMIT 10
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_vendors_rating_approval_status
    ON vendors (rating, approval_status);
