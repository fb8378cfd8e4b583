-- IF NOT EXISTS: on a large table, build it first by hand with CREATE INDEX CONCURRENTLY (README, Migrations).
CREATE INDEX IF NOT EXISTS "messages_created_at_idx" ON "messages" USING btree ("created_at");
