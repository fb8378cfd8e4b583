import { sql } from "drizzle-orm";
import { bigint, check, customType, index, integer, jsonb, pgSequence, pgTable, primaryKey, smallint, text, timestamp, unique, uuid, vector } from "drizzle-orm/pg-core";

export const users = pgTable("users", {
  id: uuid("id").primaryKey().defaultRandom(),
  email: text("email").notNull().unique(),
  name: text("name"),
  // SHA-256 of the user's API key; the key itself is shown once and never stored.
  apiKeyHash: text("api_key_hash").unique(),
  // Optional caps on the tokens the user's turns may spend: in all, per UTC day, per UTC month; null means no cap.
  tokenBudget: bigint("token_budget", { mode: "number" }),
  dailyTokenBudget: bigint("daily_token_budget", { mode: "number" }),
  monthlyTokenBudget: bigint("monthly_token_budget", { mode: "number" }),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
});

export const threads = pgTable(
  "threads",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    userId: uuid("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    title: text("title"),
    // Who wrote the title: "user" (at creation or a rename; always wins) or "auto" (after the first exchange); null while untitled.
    titleSource: text("title_source"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index("threads_user_updated_idx").on(t.userId, t.updatedAt)],
);

// Message ids come from clients (UIMessage ids), so they are unique per thread, not globally:
// a client reusing another thread's id must not overwrite that thread's row.
export const messages = pgTable(
  "messages",
  {
    threadId: uuid("thread_id")
      .notNull()
      .references(() => threads.id, { onDelete: "cascade" }),
    id: text("id").notNull(),
    role: text("role").notNull(),
    parts: jsonb("parts").notNull(),
    metadata: jsonb("metadata"),
    // Copied from an assistant message's metadata so usage totals are a plain SUM.
    model: text("model"),
    inputTokens: integer("input_tokens"),
    outputTokens: integer("output_tokens"),
    // What the message takes of a model's context, estimated when it is written (src/agent/tokens.ts).
    tokenEstimate: integer("token_estimate"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    // Ordering key: assigned on first insert, kept by upserts. Timestamps tie and skew.
    seq: bigint("seq", { mode: "number" }).notNull().generatedAlwaysAsIdentity(),
  },
  (t) => [
    primaryKey({ columns: [t.threadId, t.id] }),
    index("messages_thread_seq_idx").on(t.threadId, t.seq),
    // Admin stats read recent messages across all threads.
    index("messages_created_at_idx").on(t.createdAt),
    check("messages_role_check", sql`${t.role} in ('user', 'assistant', 'system')`),
  ],
);

// Spend, append-only: one row per model call (a turn's steps, regenerations, summaries). Deleting a
// thread or its messages never changes it (no foreign key to threads); deleting the user does.
// Written by the user's authority (src/authority) through its own outbox; entry_id makes replays idempotent.
export const spendLedger = pgTable(
  "spend_ledger",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
    entryId: text("entry_id").notNull().unique(),
    userId: uuid("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    threadId: uuid("thread_id"),
    turnId: text("turn_id"),
    kind: text("kind").notNull(),
    model: text("model").notNull(),
    inputTokens: integer("input_tokens").notNull(),
    outputTokens: integer("output_tokens").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index("spend_ledger_user_created_idx").on(t.userId, t.createdAt), index("spend_ledger_thread_idx").on(t.threadId), index("spend_ledger_created_idx").on(t.createdAt)],
);

export type User = typeof users.$inferSelect;
export type Thread = typeof threads.$inferSelect;
export type MessageRow = typeof messages.$inferSelect;

/** Width of `chunks.embedding`; EMBEDDING_DIMENSIONS must match it (a different width needs a migration). */
export const EMBEDDING_DIMENSIONS = 512;
/** Text search configuration of the lexical index; queries must be parsed with the same one. */
export const TS_CONFIG = "english";

const tsvector = customType<{ data: string }>({ dataType: () => "tsvector" });
const indexed = sql.raw(`to_tsvector('${TS_CONFIG}', title || ' ' || text)`);

// A document belongs to a user, or to everyone when owner_id is null (ingested by the admin).
export const documents = pgTable(
  "documents",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    ownerId: uuid("owner_id").references(() => users.id, { onDelete: "cascade" }),
    title: text("title").notNull(),
    source: text("source"),
    metadata: jsonb("metadata"),
    chunkCount: integer("chunk_count").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index("documents_owner_idx").on(t.ownerId)],
);

export const chunks = pgTable(
  "chunks",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
    documentId: uuid("document_id")
      .notNull()
      .references(() => documents.id, { onDelete: "cascade" }),
    // Copied from the document so both indexes filter by scope without a join.
    ownerId: uuid("owner_id"),
    position: integer("position").notNull(),
    // The document title, indexed with every chunk so a chunk matches on what its document is about.
    title: text("title").notNull(),
    text: text("text").notNull(),
    tsv: tsvector("tsv").notNull().generatedAlwaysAs(indexed),
    // BM25's document length: lexeme occurrences in tsv (tl_tsvector_length is created by migration 0003).
    length: integer("length").notNull().generatedAlwaysAs(sql`tl_tsvector_length(${indexed})`),
    embedding: vector("embedding", { dimensions: EMBEDDING_DIMENSIONS }).notNull(),
    // Which embedder made the vector: search compares only vectors of the current one.
    embedder: text("embedder").notNull(),
  },
  (t) => [
    index("chunks_document_idx").on(t.documentId, t.position),
    index("chunks_tsv_idx").using("gin", t.tsv),
    // m and ef_construction: pgvector's defaults, measured in bench/README.md; ef_search is set per query.
    index("chunks_embedding_idx").using("hnsw", t.embedding.op("vector_cosine_ops")).with({ m: 16, ef_construction: 64 }),
  ],
);

// BM25 corpus statistics, kept current by triggers on chunks (migration 0003), so inserts, deletes and
// cascades from documents and users all count, in the writing transaction.
export const searchTerms = pgTable("search_terms", {
  lexeme: text("lexeme").primaryKey(),
  df: integer("df").notNull(),
});

// BM25's inverted index: one row per (lexeme, chunk) of chunks.tsv, with what scoring needs, so a
// query reads only its lexemes' postings (an index-only scan) instead of every candidate's tsvector.
// Written by the same triggers; the primary key INCLUDEs tf, length and owner_id (migration 0003).
export const searchPostings = pgTable(
  "search_postings",
  {
    lexeme: text("lexeme").notNull(),
    chunkId: bigint("chunk_id", { mode: "number" }).notNull(),
    ownerId: uuid("owner_id"),
    tf: integer("tf").notNull(),
    length: integer("length").notNull(),
  },
  (t) => [primaryKey({ columns: [t.lexeme, t.chunkId] })],
);

export const searchCorpus = pgTable(
  "search_corpus",
  {
    id: smallint("id").primaryKey().default(1),
    chunks: bigint("chunks", { mode: "number" }).notNull(),
    tokens: bigint("tokens", { mode: "number" }).notNull(),
  },
  (t) => [check("search_corpus_singleton", sql`${t.id} = 1`)],
);

export type DocumentRow = typeof documents.$inferSelect;
export type ChunkRow = typeof chunks.$inferSelect;

// Feature flag overrides (src/flags): global when both ids are null, else for one user or one thread.
// Deleting the user or thread removes its overrides. The value is checked against the flag's schema
// on write and again on read, so a flag whose schema changed cannot break a turn.
export const flagOverrides = pgTable(
  "flag_overrides",
  {
    flag: text("flag").notNull(),
    userId: uuid("user_id").references(() => users.id, { onDelete: "cascade" }),
    threadId: uuid("thread_id").references(() => threads.id, { onDelete: "cascade" }),
    value: jsonb("value").notNull(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    // One override per (flag, scope); NULLS NOT DISTINCT makes the global row unique too.
    unique("flag_overrides_scope_key").on(t.flag, t.userId, t.threadId).nullsNotDistinct(),
    check("flag_overrides_one_scope", sql`num_nonnulls(${t.userId}, ${t.threadId}) <= 1`),
    index("flag_overrides_user_idx").on(t.userId),
    index("flag_overrides_thread_idx").on(t.threadId),
  ],
);

// MCP servers a user registered (issue 16): their tools are offered on the user's threads (or one
// thread). The bearer token is stored encrypted (AES-GCM, key from the MCP_SECRET_KEY secret).
export const mcpServers = pgTable(
  "mcp_servers",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    userId: uuid("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    threadId: uuid("thread_id").references(() => threads.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    url: text("url").notNull(),
    tokenCiphertext: text("token_ciphertext"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [unique("mcp_servers_user_name_key").on(t.userId, t.name), index("mcp_servers_thread_idx").on(t.threadId)],
);

export type McpServerRow = typeof mcpServers.$inferSelect;

// Summaries of a thread's oldest messages, as the thread agent wrote them to keep a turn's context in
// its budget (src/agent/compaction.ts). They sit beside the messages and never replace them: a summary
// covers the thread's messages from from_seq through to_seq (through_message_id), for the model only.
export const threadSummaries = pgTable(
  "thread_summaries",
  {
    threadId: uuid("thread_id")
      .notNull()
      .references(() => threads.id, { onDelete: "cascade" }),
    id: text("id").notNull(),
    throughMessageId: text("through_message_id").notNull(),
    fromSeq: bigint("from_seq", { mode: "number" }),
    toSeq: bigint("to_seq", { mode: "number" }),
    messageCount: integer("message_count").notNull(),
    text: text("text").notNull(),
    model: text("model").notNull(),
    tokenEstimate: integer("token_estimate").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.threadId, t.id] })],
);

// Messages whose text is still to be indexed for search: written in the transaction that writes the
// message, so an outage of the embedder or of Postgres delays indexing and never loses it. Deleted
// with the message (src/db/messages.ts) or its thread.
export const messageIndexQueue = pgTable(
  "message_index_queue",
  {
    threadId: uuid("thread_id")
      .notNull()
      .references(() => threads.id, { onDelete: "cascade" }),
    messageId: text("message_id").notNull(),
    queuedAt: timestamp("queued_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.threadId, t.messageId] })],
);

const messageIndexed = sql.raw(`to_tsvector('${TS_CONFIG}', text)`);

// Message text in the search engine documents use (BM25 over the tsvector's lexemes, HNSW vectors),
// always owned: a message is found by its thread's owner only. Deleted with its message, in the same
// statement as the others of a delete or clear (src/db/messages.ts), or by cascade with its thread
// (and user); the statement triggers (migration 0009) take them out of the statistics. Not a foreign
// key to messages: a cascade from there is one statement, so one trigger run, per message.
export const messageChunks = pgTable(
  "message_chunks",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
    threadId: uuid("thread_id")
      .notNull()
      .references(() => threads.id, { onDelete: "cascade" }),
    messageId: text("message_id").notNull(),
    ownerId: uuid("owner_id").notNull(),
    role: text("role").notNull(),
    position: integer("position").notNull(),
    text: text("text").notNull(),
    tsv: tsvector("tsv").notNull().generatedAlwaysAs(messageIndexed),
    length: integer("length").notNull().generatedAlwaysAs(sql`tl_tsvector_length(${messageIndexed})`),
    embedding: vector("embedding", { dimensions: EMBEDDING_DIMENSIONS }).notNull(),
    embedder: text("embedder").notNull(),
    messageCreatedAt: timestamp("message_created_at", { withTimezone: true }).notNull(),
  },
  (t) => [
    index("message_chunks_message_idx").on(t.threadId, t.messageId, t.position),
    index("message_chunks_owner_idx").on(t.ownerId, t.embedder),
    index("message_chunks_embedding_idx").using("hnsw", t.embedding.op("vector_cosine_ops")).with({ m: 16, ef_construction: 64 }),
  ],
);

// BM25 statistics and postings of message_chunks, per owner: a user's search reads only their own
// postings (the key starts with owner_id), and one user's indexing never waits on another's row locks
// (the documents' single corpus row would serialise every message write in the service).
export const messageTerms = pgTable("message_terms", { ownerId: uuid("owner_id").notNull(), lexeme: text("lexeme").notNull(), df: integer("df").notNull() }, (t) => [
  primaryKey({ columns: [t.ownerId, t.lexeme] }),
]);

export const messagePostings = pgTable(
  "message_postings",
  {
    ownerId: uuid("owner_id").notNull(),
    lexeme: text("lexeme").notNull(),
    chunkId: bigint("chunk_id", { mode: "number" }).notNull(),
    tf: integer("tf").notNull(),
    length: integer("length").notNull(),
  },
  (t) => [primaryKey({ columns: [t.ownerId, t.lexeme, t.chunkId] })],
);

/** Numbers each change of an owner's message index (migrations/0011): never reused, so an owner's version never comes back. */
export const messageCorpusVersion = pgSequence("message_corpus_version_seq");

export const messageCorpus = pgTable("message_corpus", {
  ownerId: uuid("owner_id").primaryKey(),
  chunks: bigint("chunks", { mode: "number" }).notNull(),
  tokens: bigint("tokens", { mode: "number" }).notNull(),
  /** Set anew by the triggers on every insert and delete of the owner's message chunks: the key of their cached message searches. */
  version: bigint("version", { mode: "number" }).notNull().default(sql`nextval('message_corpus_version_seq')`),
});

export type ThreadSummaryRow = typeof threadSummaries.$inferSelect;
