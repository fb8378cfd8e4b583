CREATE SEQUENCE "public"."message_corpus_version_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1;--> statement-breakpoint
ALTER TABLE "message_corpus" ADD COLUMN "version" bigint DEFAULT nextval('message_corpus_version_seq') NOT NULL;--> statement-breakpoint
-- The version of an owner's message index moves in the transaction that changes it (0009's triggers,
-- which already lock the owner's row, now also number the change), so a cached message search is
-- keyed by what it read with no invalidation step after the commit: that step was a call to the
-- owner's authority on every turn (about 2.5 ms of workerd CPU a turn at 20 threads, bench/README.md),
-- and a cache left stale until its TTL when the call failed. A row deleted at zero chunks takes its
-- version with it: the next one draws a new number, and "no row" means no messages to find.
CREATE OR REPLACE FUNCTION tl_message_chunks_insert_stats() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO message_terms (owner_id, lexeme, df)
    SELECT c.owner_id, t.lexeme, count(*) FROM new_rows c, unnest(c.tsv) t GROUP BY c.owner_id, t.lexeme ORDER BY c.owner_id, t.lexeme
    ON CONFLICT (owner_id, lexeme) DO UPDATE SET df = message_terms.df + excluded.df;
  INSERT INTO message_postings (owner_id, lexeme, chunk_id, tf, length)
    SELECT c.owner_id, t.lexeme, c.id, coalesce(array_length(t.positions, 1), 1), c.length FROM new_rows c, unnest(c.tsv) t;
  INSERT INTO message_corpus (owner_id, chunks, tokens)
    SELECT owner_id, count(*), coalesce(sum(length), 0) FROM new_rows GROUP BY owner_id ORDER BY owner_id
    ON CONFLICT (owner_id) DO UPDATE SET chunks = message_corpus.chunks + excluded.chunks, tokens = message_corpus.tokens + excluded.tokens,
      version = nextval('message_corpus_version_seq');
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION tl_message_chunks_delete_stats() RETURNS trigger LANGUAGE plpgsql SET enable_hashjoin = off SET enable_mergejoin = off AS $$
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
  UPDATE message_corpus m SET chunks = m.chunks - d.n, tokens = m.tokens - d.tokens, version = nextval('message_corpus_version_seq')
    FROM (SELECT owner_id, count(*) AS n, coalesce(sum(length), 0) AS tokens FROM old_rows GROUP BY owner_id) d WHERE m.owner_id = d.owner_id;
  DELETE FROM message_corpus m USING (SELECT DISTINCT owner_id FROM old_rows) d WHERE m.owner_id = d.owner_id AND m.chunks <= 0;
  RETURN NULL;
END $$;
