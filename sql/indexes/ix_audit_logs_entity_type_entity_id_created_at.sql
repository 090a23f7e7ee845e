-- The history of one entity (an order, a payment, a retailer), newest first.
-- verify: SELECT id, user_id, action, created_at FROM audit_logs WHERE entity_type = 'ORDER' AND entity_id = 31331 ORDER BY created_at DESC
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_audit_logs_entity_type_entity_id_created_at
    ON audit_logs (entity_type, entity_id, created_at);
