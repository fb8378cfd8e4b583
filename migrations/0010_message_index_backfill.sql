-- Messages written before message search are queued for indexing; each thread's agent indexes its own
-- queue when it next writes to Postgres. Only what a search returns (user and assistant text) is queued.
INSERT INTO message_index_queue (thread_id, message_id) SELECT thread_id, id FROM messages WHERE role IN ('user', 'assistant') ON CONFLICT DO NOTHING;
