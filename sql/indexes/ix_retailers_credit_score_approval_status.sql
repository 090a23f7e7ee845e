-- Credit risk review: approved retailers with the lowest credit scores.
-- verify: SELECT id, business_name, credit_score FROM retailers WHERE credit_score < 400 AND approval_status = 'APPROVED' ORDER BY credit_score LIMIT 50
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_retailers_credit_score_approval_status
    ON retailers (credit_score, approval_status);
