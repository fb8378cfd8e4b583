import { createHash, randomUUID } from "node:crypto";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { drizzle } from "drizzle-orm/node-postgres";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { applyMigrations, MIGRATIONS_DIR, startPglite, withPassword } from "../scripts/lib/postgres.ts";
import { searchChunks } from "../src/db/documents.ts";
import { listMessages } from "../src/db/messages.ts";
import { searchMessageChunks } from "../src/db/message-search.ts";
import { getUserByKeyHash } from "../src/db/users.ts";

type JournalEntry = { idx: number; tag: string; when: number };
const journal = JSON.parse(readFileSync(join(MIGRATIONS_DIR, "meta/_journal.json"), "utf8")) as { entries: JournalEntry[] };

type Seed = { seed: (db: pg.Client) => Promise<unknown> } | { noData: string };

const U1 = "00000000-0000-4000-8000-0000000000a1";
const U2 = "00000000-0000-4000-8000-0000000000a2";
const U3 = "00000000-0000-4000-8000-0000000000a3";
const T1 = "00000000-0000-4000-8000-0000000000b1";
const T2 = "00000000-0000-4000-8000-0000000000b2";
const T3 = "00000000-0000-4000-8000-0000000000b3";
const D1 = "00000000-0000-4000-8000-0000000000c1";
const D2 = "00000000-0000-4000-8000-0000000000c2";
const KEY_HASH = createHash("sha256").update("tl_migration-test-key").digest("hex");
/** A deterministic 512-dimension embedding, distinct per `k`. */
const embedding = (k: number) => `(SELECT array_agg(round(sin(i * ${k})::numeric, 6) ORDER BY i)::vector(512) FROM generate_series(1, 512) i)`;

/**
 * Rows in the shape each migration leaves, as the release that shipped it wrote them. Raw SQL, so
 * each seed keeps describing its own schema after src/db/schema.ts moves on. Every migration in the
 * journal needs an entry: a seed for the tables and columns it adds, or `noData` saying why none.
 */
const SEEDS: Record<string, Seed> = {
  "0000_enable_pgvector": { noData: "creates the vector extension, no tables" },
  "0001_init": {
    seed: (db) =>
      db.query(`
        INSERT INTO users (id, email, name) VALUES ('${U1}', 'ada@tests.threadline.invalid', 'Ada'), ('${U2}', 'bob@tests.threadline.invalid', NULL);
        INSERT INTO threads (id, user_id, title) VALUES ('${T1}', '${U1}', 'First thread'), ('${T2}', '${U2}', NULL);
        INSERT INTO messages (thread_id, id, role, parts, metadata) VALUES
          ('${T1}', 'm1', 'user', '[{"type":"text","text":"hello"}]', NULL),
          ('${T1}', 'm2', 'assistant', '[{"type":"step-start"},{"type":"tool-current_time","toolCallId":"call_1","state":"output-available","input":{},"output":{"iso":"2026-01-01T00:00:00Z"}},{"type":"text","text":"Hi! ünïcødé 🎉, \\"quoted\\"\\nnext line"}]',
           '{"model":"gpt-4o-mini","offline":false,"usage":{"inputTokens":12,"outputTokens":7,"totalTokens":19}}'),
          ('${T1}', 'm3', 'system', '[{"type":"text","text":"be brief"}]', NULL),
          ('${T2}', 'm1', 'user', '[{"type":"text","text":"same message id, another thread"}]', NULL);
      `),
  },
  "0002_auth_and_usage": {
    seed: (db) =>
      db.query(`
        INSERT INTO users (id, email, name, api_key_hash, token_budget) VALUES ('${U3}', 'cy@tests.threadline.invalid', 'Cy', '${KEY_HASH}', 50000);
        UPDATE users SET token_budget = 1000 WHERE id = '${U2}';
        INSERT INTO threads (id, user_id, title) VALUES ('${T3}', '${U3}', 'Budgeted');
        INSERT INTO messages (thread_id, id, role, parts, metadata, model, input_tokens, output_tokens) VALUES
          ('${T3}', 'u-1', 'user', '[{"type":"text","text":"what time is it?"}]', NULL, NULL, NULL, NULL),
          ('${T3}', 'a-1', 'assistant', '[{"type":"text","text":"Noon."}]', '{"model":"fake-model","offline":false,"usage":{"inputTokens":30,"outputTokens":2}}', 'fake-model', 30, 2);
      `),
  },
  "0003_search": {
    seed: (db) =>
      db.query(`
        INSERT INTO documents (id, owner_id, title, source, metadata, chunk_count) VALUES
          ('${D1}', NULL, 'Tidal energy', 'https://example.invalid/tides', '{"lang":"en","tags":["energy"]}', 2),
          ('${D2}', '${U3}', 'Cy''s notes', NULL, NULL, 1);
        INSERT INTO chunks (document_id, owner_id, position, title, text, embedding, embedder) VALUES
          ('${D1}', NULL, 0, 'Tidal energy', 'Tidal turbines convert the kinetic energy of moving water into electricity.', ${embedding(1)}, 'fake-512'),
          ('${D1}', NULL, 1, 'Tidal energy', 'Barrages hold water at high tide and release it through turbines.', ${embedding(2)}, 'fake-512');
        INSERT INTO chunks (document_id, owner_id, position, title, text, embedding, embedder) VALUES
          ('${D2}', '${U3}', 0, 'Cy''s notes', 'Sourdough needs a lively starter and patience.', ${embedding(3)}, 'fake-512');
      `),
  },
  "0004_flags": {
    seed: (db) =>
      db.query(`
        INSERT INTO flag_overrides (flag, user_id, thread_id, value) VALUES
          ('hybrid_search', NULL, NULL, 'false'),
          ('chat_model', '${U3}', NULL, '"gpt-4o"'),
          ('turn_rate_limit', NULL, '${T1}', '3');
      `),
  },
  "0005_messages_created_at": { noData: "adds an index on messages(created_at) for the admin stats" },
  "0006_spend_ledger": {
    seed: (db) =>
      db.query(`
        UPDATE users SET daily_token_budget = 2000, monthly_token_budget = 40000 WHERE id = '${U3}';
        INSERT INTO spend_ledger (entry_id, user_id, thread_id, turn_id, kind, model, input_tokens, output_tokens) VALUES
          ('t-9:0', '${U3}', '${T3}', 't-9', 'turn', 'fake-model', 40, 5),
          ('t-9:1', '${U3}', NULL, 't-9', 'turn', 'fake-model', 55, 9);
      `),
  },
  "0007_spend_ledger_backfill": { noData: "backfills spend_ledger from the usage columns of assistant messages written before it" },
  "0008_mcp_servers": {
    seed: (db) =>
      db.query(`
        INSERT INTO mcp_servers (user_id, thread_id, name, url, token_ciphertext) VALUES
          ('${U3}', NULL, 'notes', 'https://mcp.example.invalid/mcp', 'v1.aXY.Y2lwaGVy'),
          ('${U1}', '${T1}', 'tickets', 'https://tickets.example.invalid/mcp', NULL);
      `),
  },
  "0009_message_search": {
    seed: (db) =>
      db.query(`
        UPDATE threads SET title_source = 'user' WHERE id = '${T1}';
        UPDATE messages SET token_estimate = 6 WHERE thread_id = '${T1}' AND id = 'm1';
        INSERT INTO thread_summaries (thread_id, id, through_message_id, from_seq, to_seq, message_count, text, model, token_estimate)
          SELECT '${T1}', 's-1', 'm2', min(seq), max(seq), 2, 'Earlier in this conversation (2 messages):\n- User: hello', 'threadline-offline', 12 FROM messages WHERE thread_id = '${T1}' AND id IN ('m1', 'm2');
        INSERT INTO message_chunks (thread_id, message_id, owner_id, role, position, text, embedding, embedder, message_created_at) VALUES
          ('${T1}', 'm1', '${U1}', 'user', 0, 'hello, are tidal turbines loud?', ${embedding(4)}, 'fake-512', '2026-01-01T00:00:00Z');
        INSERT INTO message_index_queue (thread_id, message_id) VALUES ('${T1}', 'm2');
      `),
  },
  "0010_message_index_backfill": { noData: "queues the user and assistant messages written before message search for indexing" },
  "0011_message_search_version": {
    seed: (db) =>
      db.query(`
        INSERT INTO message_chunks (thread_id, message_id, owner_id, role, position, text, embedding, embedder, message_created_at) VALUES
          ('${T1}', 'm2', '${U1}', 'assistant', 0, 'Hi! They hum quietly.', ${embedding(5)}, 'fake-512', '2026-01-01T00:00:01Z');
      `),
  },
};

/** Columns a contract migration drops on purpose, as "table.column", by migration tag; anything else that disappears is data lost. */
const CONTRACTED: Record<string, string[]> = {};

type Snapshot = Map<string, { columns: string[]; rows: Record<string, unknown>[] }>;

/** Every table's rows, by the columns that hold data (generated columns are derived, so left out). */
async function snapshot(db: pg.Client): Promise<Snapshot> {
  const { rows: cols } = await db.query<{ table_name: string; column_name: string }>(
    `SELECT c.table_name, c.column_name FROM information_schema.columns c JOIN information_schema.tables t USING (table_schema, table_name)
     WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' AND c.is_generated = 'NEVER' ORDER BY c.table_name, c.ordinal_position`,
  );
  const out: Snapshot = new Map();
  for (const { table_name, column_name } of cols) {
    const entry = out.get(table_name) ?? { columns: [], rows: [] };
    entry.columns.push(column_name);
    out.set(table_name, entry);
  }
  for (const [table, entry] of out) entry.rows = (await db.query<{ r: Record<string, unknown> }>(`SELECT to_jsonb(t) AS r FROM "${table}" t`)).rows.map((x) => x.r);
  return out;
}

const project = (rows: Record<string, unknown>[], columns: string[]) => rows.map((r) => JSON.stringify(columns.map((c) => r[c]))).sort();

/** Fails if any row or column value in `before` is missing or different in `after`. */
function expectKept(before: Snapshot, after: Snapshot, tag: string) {
  for (const [table, { columns, rows }] of before) {
    const now = after.get(table);
    expect(now, `migration ${tag} dropped table ${table}, which held ${rows.length} row(s)`).toBeDefined();
    const gone = columns.filter((c) => !now!.columns.includes(c) && !CONTRACTED[tag]?.includes(`${table}.${c}`));
    expect(gone, `migration ${tag} dropped column(s) of ${table} that held data; a contract step must be listed in CONTRACTED`).toEqual([]);
    const kept = columns.filter((c) => now!.columns.includes(c));
    // Every row is still there, unchanged; a backfill may add rows.
    expect(project(now!.rows, kept), `migration ${tag} changed rows of ${table}`).toEqual(expect.arrayContaining(project(rows, kept)));
  }
}

/** A database of its own: a temporary one on TEST_DATABASE_URL's server, or a separate embedded PGlite. */
async function freshDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const server = process.env.TEST_DATABASE_URL;
  if (!server) {
    const local = await startPglite();
    return { url: local.url, drop: local.stop };
  }
  const name = `tl_migrations_${randomUUID().replaceAll("-", "")}`;
  const admin = async (statement: string) => {
    const c = new pg.Client({ connectionString: server });
    c.on("error", () => {});
    await c.connect();
    await c.query(statement).finally(() => c.end());
  };
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(withPassword(server));
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => admin(`DROP DATABASE ${name} WITH (FORCE)`) };
}

describe("migrations", () => {
  it("each have a seed in this file, and the journal is in order", () => {
    const tags = journal.entries.map((e) => e.tag);
    const missing = tags.filter((t) => !SEEDS[t]);
    expect(
      missing,
      `add to SEEDS in test/db.migrations.node.test.ts, for each new migration, raw SQL that writes realistic rows into what it adds ` +
        `(or { noData: "why" }): this test proves later migrations keep them`,
    ).toEqual([]);
    expect(
      Object.keys(SEEDS).filter((t) => !tags.includes(t)),
      "seeds for migrations not in the journal",
    ).toEqual([]);
    // drizzle's migrator skips a migration whose `when` is not later than the newest one applied.
    for (const [i, e] of journal.entries.entries()) {
      expect(e.idx, `journal entry ${e.tag}`).toBe(i);
      if (i > 0)
        expect(e.when, `${e.tag} is dated before ${journal.entries[i - 1]!.tag}: the migrator would skip it on databases that have the earlier one`).toBeGreaterThan(
          journal.entries[i - 1]!.when,
        );
    }
  });

  it("applied one at a time over data written by the previous schema, keep every row", { timeout: 120_000 }, async () => {
    const database = await freshDatabase();
    const scratch = mkdtempSync(join(tmpdir(), "tl-migrations-"));
    const db = new pg.Client({ connectionString: database.url });
    db.on("error", () => {});
    try {
      cpSync(MIGRATIONS_DIR, scratch, { recursive: true });
      await db.connect();
      let before: Snapshot = new Map();
      for (const [k, entry] of journal.entries.entries()) {
        // The real migrator, on a journal that ends at this migration.
        writeFileSync(join(scratch, "meta/_journal.json"), JSON.stringify({ ...journal, entries: journal.entries.slice(0, k + 1) }));
        await applyMigrations(database.url, scratch);
        const applied = await db.query("SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations");
        expect(applied.rows[0].n, `after ${entry.tag}`).toBe(k + 1);
        expectKept(before, await snapshot(db), entry.tag);

        const seed = SEEDS[entry.tag];
        if (!seed) throw new Error(`no seed for migration ${entry.tag}: see the first test`);
        if ("seed" in seed) await seed.seed(db);
        before = await snapshot(db);
      }

      // Everything seeded is there, including what the search triggers derived from the chunks.
      const count = (table: string) => before.get(table)?.rows.length;
      expect([count("users"), count("threads"), count("messages"), count("documents"), count("chunks"), count("flag_overrides")]).toEqual([3, 3, 6, 2, 3, 3]);
      // The spend recorded before the ledger (the usage columns of a-1) is in it beside the entries written since.
      expect(
        before
          .get("spend_ledger")
          ?.rows.map((r) => [r.entry_id, r.input_tokens, r.output_tokens])
          .sort(),
      ).toEqual([
        [`backfill:${T3}:a-1`, 30, 2],
        ["t-9:0", 40, 5],
        ["t-9:1", 55, 9],
      ]);
      expect(count("search_postings")).toBeGreaterThan(20);
      // The message index's statistics, kept by its triggers, per owner; the backfill queued the older messages.
      // 0011 numbered the row written before it, and the chunk written since numbered it anew.
      expect(before.get("message_corpus")?.rows).toEqual([expect.objectContaining({ owner_id: U1, chunks: 2, version: expect.any(Number) })]);
      expect(before.get("message_corpus")?.rows[0]?.version).toBeGreaterThan(1);
      expect(count("message_postings")).toBeGreaterThan(2);
      expect(
        before
          .get("message_index_queue")
          ?.rows.map((r) => `${r.thread_id}/${r.message_id}`)
          .sort(),
      ).toEqual([`${T1}/m1`, `${T1}/m2`, `${T2}/m1`, `${T3}/a-1`, `${T3}/u-1`]);
      expect(before.get("search_corpus")?.rows).toEqual([expect.objectContaining({ chunks: 3 })]);

      // Today's query code reads the rows older releases wrote.
      const app = drizzle(db);
      const page = await listMessages(app, T1, { limit: 10 });
      expect(page.messages.map((m) => [m.id, m.role])).toEqual([
        ["m1", "user"],
        ["m2", "assistant"],
        ["m3", "system"],
      ]);
      expect(page.messages[1]!.parts).toContainEqual({ type: "text", text: 'Hi! ünïcødé 🎉, "quoted"\nnext line' });
      expect((await listMessages(app, T2, { limit: 10 })).messages.map((m) => m.parts)).toEqual([[{ type: "text", text: "same message id, another thread" }]]);
      expect(await getUserByKeyHash(app, KEY_HASH)).toMatchObject({ id: U3, tokenBudget: 50000 });
      const query = { embedder: "fake-512", limit: 5, candidates: 20, vectorWeight: 0.5 };
      const lexical = await searchChunks(app, { ...query, mode: "lexical", text: "turbines for tidal water", scope: { ownerId: U3 } });
      expect(lexical.map((h) => h.documentId)).toEqual([D1, D1]);
      const vector = (await db.query<{ v: string }>(`SELECT ${embedding(3)}::text AS v`)).rows[0]!.v;
      const nearest = await searchChunks(app, { ...query, mode: "vector", text: "", vector: JSON.parse(vector), scope: { ownerId: U3 } });
      expect(nearest[0]?.documentId).toBe(D2);
      const messageHits = await searchMessageChunks(app, { ...query, mode: "lexical", text: "tidal turbines", ownerId: U1 });
      expect(messageHits.map((h) => [h.threadId, h.messageId, h.role])).toEqual([[T1, "m1", "user"]]);
      expect(await searchMessageChunks(app, { ...query, mode: "lexical", text: "tidal turbines", ownerId: U3 })).toEqual([]);
    } finally {
      await db.end().catch(() => {});
      rmSync(scratch, { recursive: true, force: true });
      await database.drop();
    }
  });
});
