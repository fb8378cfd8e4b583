CREATE TABLE "message_chunks" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "message_chunks_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"thread_id" uuid NOT NULL,
	"message_id" text NOT NULL,
	"owner_id" uuid NOT NULL,
	"role" text NOT NULL,
	"position" integer NOT NULL,
	"text" text NOT NULL,
	"tsv" "tsvector" GENERATED ALWAYS AS (to_tsvector('english', text)) STORED NOT NULL,
	"length" integer GENERATED ALWAYS AS (tl_tsvector_length(to_tsvector('english', text))) STORED NOT NULL,
	"embedding" vector(512) NOT NULL,
	"embedder" text NOT NULL,
	"message_created_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "message_corpus" (
	"owner_id" uuid PRIMARY KEY NOT NULL,
	"chunks" bigint NOT NULL,
	"tokens" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "message_index_queue" (
	"thread_id" uuid NOT NULL,
	"message_id" text NOT NULL,
	"queued_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "message_index_queue_thread_id_message_id_pk" PRIMARY KEY("thread_id","message_id")
);
--> statement-breakpoint
CREATE TABLE "message_postings" (
	"owner_id" uuid NOT NULL,
	"lexeme" text NOT NULL,
	"chunk_id" bigint NOT NULL,
	"tf" integer NOT NULL,
	"length" integer NOT NULL,
	CONSTRAINT "message_postings_owner_id_lexeme_chunk_id_pk" PRIMARY KEY("owner_id","lexeme","chunk_id") INCLUDE ("tf", "length")
);
--> statement-breakpoint
CREATE TABLE "message_terms" (
	"owner_id" uuid NOT NULL,
	"lexeme" text NOT NULL,
	"df" integer NOT NULL,
	CONSTRAINT "message_terms_owner_id_lexeme_pk" PRIMARY KEY("owner_id","lexeme")
);
--> statement-breakpoint
CREATE TABLE "thread_summaries" (
	"thread_id" uuid NOT NULL,
	"id" text NOT NULL,
	"through_message_id" text NOT NULL,
	"from_seq" bigint,
	"to_seq" bigint,
	"message_count" integer NOT NULL,
	"text" text NOT NULL,
	"model" text NOT NULL,
	"token_estimate" integer NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "thread_summaries_thread_id_id_pk" PRIMARY KEY("thread_id","id")
);
--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "token_estimate" integer;--> statement-breakpoint
ALTER TABLE "threads" ADD COLUMN "title_source" text;--> statement-breakpoint
ALTER TABLE "message_chunks" ADD CONSTRAINT "message_chunks_thread_id_threads_id_fk" FOREIGN KEY ("thread_id") REFERENCES "public"."threads"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "message_index_queue" ADD CONSTRAINT "message_index_queue_thread_id_threads_id_fk" FOREIGN KEY ("thread_id") REFERENCES "public"."threads"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "thread_summaries" ADD CONSTRAINT "thread_summaries_thread_id_threads_id_fk" FOREIGN KEY ("thread_id") REFERENCES "public"."threads"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "message_chunks_message_idx" ON "message_chunks" USING btree ("thread_id","message_id","position");--> statement-breakpoint
CREATE INDEX "message_chunks_owner_idx" ON "message_chunks" USING btree ("owner_id","embedder");--> statement-breakpoint
CREATE INDEX "message_chunks_embedding_idx" ON "message_chunks" USING hnsw ("embedding" vector_cosine_ops) WITH (m=16,ef_construction=64);
--> statement-breakpoint
-- BM25 statistics and postings of message text, per owner, follow every insert and delete of
-- message_chunks (cascades from threads and users included) in the same transaction, as 0003's do
-- for documents. Keys are taken in sorted order so concurrent writers lock rows in one order.
CREATE FUNCTION tl_message_chunks_insert_stats() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO message_terms (owner_id, lexeme, df)
    SELECT c.owner_id, t.lexeme, count(*) FROM new_rows c, unnest(c.tsv) t GROUP BY c.owner_id, t.lexeme ORDER BY c.owner_id, t.lexeme
    ON CONFLICT (owner_id, lexeme) DO UPDATE SET df = message_terms.df + excluded.df;
  INSERT INTO message_postings (owner_id, lexeme, chunk_id, tf, length)
    SELECT c.owner_id, t.lexeme, c.id, coalesce(array_length(t.positions, 1), 1), c.length FROM new_rows c, unnest(c.tsv) t;
  INSERT INTO message_corpus (owner_id, chunks, tokens)
    SELECT owner_id, count(*), coalesce(sum(length), 0) FROM new_rows GROUP BY owner_id ORDER BY owner_id
    ON CONFLICT (owner_id) DO UPDATE SET chunks = message_corpus.chunks + excluded.chunks, tokens = message_corpus.tokens + excluded.tokens;
  RETURN NULL;
END $$;
--> statement-breakpoint
-- Every statement is driven by the deleted rows (nested loops probing the primary keys), so a delete
-- costs what it removes, not the size of the tables: a cascade from a user's deletion runs this once per
-- user, and hash or merge joins over all of message_postings there took a deletion of 220 users holding
-- 100k indexed messages past 15 minutes.
CREATE FUNCTION tl_message_chunks_delete_stats() RETURNS trigger LANGUAGE plpgsql SET enable_hashjoin = off SET enable_mergejoin = off AS $$
BEGIN
  PERFORM 1 FROM (SELECT DISTINCT c.owner_id, t.lexeme FROM old_rows c, unnest(c.tsv) t) d JOIN message_terms m ON m.owner_id = d.owner_id AND m.lexeme = d.lexeme
    ORDER BY m.owner_id, m.lexeme FOR UPDATE OF m;
  UPDATE message_terms m SET df = m.df - d.n
    FROM (SELECT c.owner_id, t.lexeme, count(*) AS n FROM old_rows c, unnest(c.tsv) t GROUP BY c.owner_id, t.lexeme) d
    WHERE m.owner_id = d.owner_id AND m.lexeme = d.lexeme;
  DELETE FROM message_terms m USING (SELECT DISTINCT c.owner_id, t.lexeme FROM old_rows c, unnest(c.tsv) t) d
    WHERE m.owner_id = d.owner_id AND m.lexeme = d.lexeme AND m.df <= 0;
  -- Materialized: the postings' whole key is known before they are probed (flattened, the probe skipped the lexeme: 1 s a user).
  WITH g AS MATERIALIZED (SELECT c.owner_id, t.lexeme, c.id FROM old_rows c, unnest(c.tsv) t)
  DELETE FROM message_postings p USING g WHERE p.owner_id = g.owner_id AND p.lexeme = g.lexeme AND p.chunk_id = g.id;
  PERFORM 1 FROM (SELECT DISTINCT owner_id FROM old_rows) d JOIN message_corpus m ON m.owner_id = d.owner_id ORDER BY m.owner_id FOR UPDATE OF m;
  UPDATE message_corpus m SET chunks = m.chunks - d.n, tokens = m.tokens - d.tokens
    FROM (SELECT owner_id, count(*) AS n, coalesce(sum(length), 0) AS tokens FROM old_rows GROUP BY owner_id) d WHERE m.owner_id = d.owner_id;
  DELETE FROM message_corpus m USING (SELECT DISTINCT owner_id FROM old_rows) d WHERE m.owner_id = d.owner_id AND m.chunks <= 0;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER message_chunks_insert_stats AFTER INSERT ON message_chunks REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tl_message_chunks_insert_stats();
--> statement-breakpoint
CREATE TRIGGER message_chunks_delete_stats AFTER DELETE ON message_chunks REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tl_message_chunks_delete_stats();
