-- The WhatsApp worker's queue: unprocessed messages, oldest first; partial: the queue is tiny.
-- verify: SELECT id, "from", body, created_at FROM whatsapp_messages WHERE NOT is_processed ORDER BY created_at LIMIT 100
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_whatsapp_messages_created_at_unprocessed
    ON whatsapp_messages (created_at)
    WHERE NOT is_processed;
