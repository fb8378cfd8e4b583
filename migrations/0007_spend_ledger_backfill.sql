-- The spend recorded before the ledger existed: one entry per assistant message that carries usage, so budgets and usage carry over.
INSERT INTO "spend_ledger" ("entry_id", "user_id", "thread_id", "turn_id", "kind", "model", "input_tokens", "output_tokens", "created_at")
SELECT 'backfill:' || m."thread_id" || ':' || m."id", t."user_id", m."thread_id", NULL, 'turn', coalesce(m."model", 'unknown'), coalesce(m."input_tokens", 0), coalesce(m."output_tokens", 0), m."created_at"
FROM "messages" m JOIN "threads" t ON t."id" = m."thread_id"
WHERE m."role" = 'assistant' AND (m."input_tokens" IS NOT NULL OR m."output_tokens" IS NOT NULL)
ON CONFLICT ("entry_id") DO NOTHING;
