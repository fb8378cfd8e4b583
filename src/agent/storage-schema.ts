import { log } from "../observability/log.ts";

/**
 * The layout of our own tables in a thread agent's SQLite (AIChatAgent versions its tables itself).
 * STEPS[i] takes the storage from version i to i + 1. Version 0 is an agent with no version
 * recorded: one deployed before versions were, whose unsent outbox rows must survive the upgrade.
 * Steps only expand (a new table, a nullable or defaulted column, an index), so code one release
 * older still works on storage a newer release has upgraded; see the README's Rollback section.
 */
export const STORAGE_STEPS: readonly ((sql: SqlStorage) => void)[] = [
  // 1: the transcript outbox (drained to Postgres, oldest first).
  (sql) => sql.exec("CREATE TABLE IF NOT EXISTS tl_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, op TEXT NOT NULL, created_at INTEGER NOT NULL)"),
  // 2: changes Postgres refused for good, kept with the error until an admin retries or drops them.
  (sql) =>
    sql.exec(
      "CREATE TABLE IF NOT EXISTS tl_quarantine (seq INTEGER PRIMARY KEY, op TEXT NOT NULL, created_at INTEGER NOT NULL, error TEXT NOT NULL, quarantined_at INTEGER NOT NULL)",
    ),
  // 3: the outbox's retry attempt and when it is due, so backoff survives eviction.
  (sql) => sql.exec("CREATE TABLE IF NOT EXISTS tl_outbox_retry (id INTEGER PRIMARY KEY CHECK (id = 1), attempt INTEGER NOT NULL, next_at INTEGER)"),
  // 4: tool calls held for the owner's decision (approvals), until decided or expired.
  (sql) =>
    sql.exec(
      "CREATE TABLE IF NOT EXISTS tl_approvals (approval_id TEXT PRIMARY KEY, tool_call_id TEXT NOT NULL, tool_name TEXT NOT NULL, input_hash TEXT NOT NULL, input TEXT NOT NULL, turn_id TEXT, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, status TEXT NOT NULL, decided_at INTEGER, decided_by TEXT, reason TEXT)",
    ),
  // 5: summaries of the thread's oldest messages for the model's context (./context-window.ts); `synced` once copied to Postgres.
  (sql) =>
    sql.exec(
      "CREATE TABLE IF NOT EXISTS tl_summaries (id TEXT PRIMARY KEY, through_id TEXT NOT NULL, messages INTEGER NOT NULL, text TEXT NOT NULL, model TEXT NOT NULL, tokens INTEGER NOT NULL, created_at INTEGER NOT NULL, synced INTEGER NOT NULL DEFAULT 0)",
    ),
];

export const STORAGE_VERSION = STORAGE_STEPS.length;

export function storageVersion(sql: SqlStorage): number {
  sql.exec("CREATE TABLE IF NOT EXISTS tl_schema_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)");
  return Number(sql.exec<{ version: number }>("SELECT version FROM tl_schema_version WHERE id = 1").toArray()[0]?.version ?? 0);
}

/**
 * Brings our tables up to date, synchronously (call it in the constructor, before anything reads
 * them). Each step commits together with its new version number, so a step that throws leaves the
 * storage at the last version that completed and the next wake retries from there. Storage newer
 * than this code (after a rollback) is left as it is: only a newer release moves it on.
 */
export function upgradeStorage(storage: DurableObjectStorage, steps = STORAGE_STEPS): { from: number; to: number } {
  const from = storageVersion(storage.sql);
  if (from > steps.length) {
    log("warn", "agent_storage_newer_than_code", { storageVersion: from, codeVersion: steps.length });
    return { from, to: from };
  }
  for (let v = from; v < steps.length; v++)
    storage.transactionSync(() => {
      steps[v]!(storage.sql);
      storage.sql.exec("INSERT INTO tl_schema_version (id, version) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET version = excluded.version", v + 1);
    });
  return { from, to: Math.max(from, steps.length) };
}
