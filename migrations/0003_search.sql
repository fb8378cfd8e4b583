-- BM25 document length: lexeme occurrences in a tsvector (a stripped lexeme counts once).
CREATE FUNCTION tl_tsvector_length(v tsvector) RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN (SELECT coalesce(sum(coalesce(array_length(positions, 1), 1)), 0)::integer FROM unnest(v));
--> statement-breakpoint
CREATE TABLE "chunks" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "chunks_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"document_id" uuid NOT NULL,
	"owner_id" uuid,
	"position" integer NOT NULL,
	"title" text NOT NULL,
	"text" text NOT NULL,
	"tsv" "tsvector" GENERATED ALWAYS AS (to_tsvector('english', title || ' ' || text)) STORED NOT NULL,
	"length" integer GENERATED ALWAYS AS (tl_tsvector_length(to_tsvector('english', title || ' ' || text))) STORED NOT NULL,
	"embedding" vector(512) NOT NULL,
	"embedder" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "documents" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"owner_id" uuid,
	"title" text NOT NULL,
	"source" text,
	"metadata" jsonb,
	"chunk_count" integer NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "search_corpus" (
	"id" smallint PRIMARY KEY DEFAULT 1 NOT NULL,
	"chunks" bigint NOT NULL,
	"tokens" bigint NOT NULL,
	CONSTRAINT "search_corpus_singleton" CHECK ("search_corpus"."id" = 1)
);
--> statement-breakpoint
CREATE TABLE "search_postings" (
	"lexeme" text NOT NULL,
	"chunk_id" bigint NOT NULL,
	"owner_id" uuid,
	"tf" integer NOT NULL,
	"length" integer NOT NULL,
	CONSTRAINT "search_postings_lexeme_chunk_id_pk" PRIMARY KEY("lexeme","chunk_id") INCLUDE ("tf", "length", "owner_id")
);
--> statement-breakpoint
CREATE TABLE "search_terms" (
	"lexeme" text PRIMARY KEY NOT NULL,
	"df" integer NOT NULL
);
--> statement-breakpoint
ALTER TABLE "chunks" ADD CONSTRAINT "chunks_document_id_documents_id_fk" FOREIGN KEY ("document_id") REFERENCES "public"."documents"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "documents" ADD CONSTRAINT "documents_owner_id_users_id_fk" FOREIGN KEY ("owner_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "chunks_document_idx" ON "chunks" USING btree ("document_id","position");--> statement-breakpoint
CREATE INDEX "chunks_tsv_idx" ON "chunks" USING gin ("tsv");--> statement-breakpoint
CREATE INDEX "chunks_embedding_idx" ON "chunks" USING hnsw ("embedding" vector_cosine_ops) WITH (m=16,ef_construction=64);--> statement-breakpoint
CREATE INDEX "documents_owner_idx" ON "documents" USING btree ("owner_id");
--> statement-breakpoint
-- BM25 corpus statistics and postings follow every insert and delete of chunks, cascades included, in
-- the same transaction. Lexemes are taken in sorted order so concurrent writers lock rows in one order.
CREATE FUNCTION tl_chunks_insert_stats() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO search_terms (lexeme, df)
    SELECT t.lexeme, count(*) FROM new_rows c, unnest(c.tsv) t GROUP BY t.lexeme ORDER BY t.lexeme
    ON CONFLICT (lexeme) DO UPDATE SET df = search_terms.df + excluded.df;
  INSERT INTO search_postings (lexeme, chunk_id, owner_id, tf, length)
    SELECT t.lexeme, c.id, c.owner_id, coalesce(array_length(t.positions, 1), 1), c.length FROM new_rows c, unnest(c.tsv) t;
  INSERT INTO search_corpus (id, chunks, tokens) SELECT 1, count(*), coalesce(sum(length), 0) FROM new_rows
    ON CONFLICT (id) DO UPDATE SET chunks = search_corpus.chunks + excluded.chunks, tokens = search_corpus.tokens + excluded.tokens;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE FUNCTION tl_chunks_delete_stats() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM search_terms WHERE lexeme IN (SELECT t.lexeme FROM old_rows c, unnest(c.tsv) t) ORDER BY lexeme FOR UPDATE;
  UPDATE search_terms s SET df = s.df - d.n
    FROM (SELECT t.lexeme, count(*) AS n FROM old_rows c, unnest(c.tsv) t GROUP BY t.lexeme) d WHERE s.lexeme = d.lexeme;
  DELETE FROM search_terms WHERE df <= 0 AND lexeme IN (SELECT t.lexeme FROM old_rows c, unnest(c.tsv) t);
  DELETE FROM search_postings p USING old_rows c, unnest(c.tsv) t WHERE p.lexeme = t.lexeme AND p.chunk_id = c.id;
  UPDATE search_corpus SET chunks = chunks - (SELECT count(*) FROM old_rows), tokens = tokens - (SELECT coalesce(sum(length), 0) FROM old_rows) WHERE id = 1;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER chunks_insert_stats AFTER INSERT ON chunks REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tl_chunks_insert_stats();
--> statement-breakpoint
CREATE TRIGGER chunks_delete_stats AFTER DELETE ON chunks REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tl_chunks_delete_stats();
