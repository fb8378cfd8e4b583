import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { STORAGE_STEPS, STORAGE_VERSION, storageVersion, upgradeStorage } from "../src/agent/storage-schema.ts";
import type { ThreadAgent } from "../src/agent/thread-agent.ts";
import { eventually, fetchApp, messageRows, threadsForEachTest, threadAgent } from "./support/helpers.ts";

const newThread = threadsForEachTest();
const agentOf = (threadId: string) => threadAgent(threadId);
const status = async (threadId: string, apiKey: string) =>
  ((await (await fetchApp(`/api/v1/threads/${threadId}/status`, {}, apiKey)).json()) as { outbox: { backlog: number } }).outbox.backlog;

// Outbox rows exactly as the release before storage versions wrote them.
const legacyOps = [
  { op: "upsert", message: { id: "legacy-u", role: "user", parts: [{ type: "text", text: "written before versions" }] } },
  { op: "upsert", message: { id: "legacy-a", role: "assistant", parts: [{ type: "text", text: "draft" }], metadata: { model: "fake-model", offline: false } } },
  {
    op: "upsert",
    message: {
      id: "legacy-a",
      role: "assistant",
      parts: [{ type: "text", text: "final answer" }],
      metadata: { model: "fake-model", offline: false, usage: { inputTokens: 9, outputTokens: 2, totalTokens: 11 } },
    },
  },
  { op: "upsert", message: { id: "legacy-x", role: "user", parts: [{ type: "text", text: "removed later" }] } },
  { op: "delete", ids: ["legacy-x"] },
];

describe("the thread agent's storage schema", () => {
  it("upgrades an agent from before versions were recorded, keeping its unsent outbox rows, which then drain to Postgres", async () => {
    const t = await newThread();
    expect(await status(t.threadId, t.apiKey)).toBe(0);
    const stub = agentOf(t.threadId);
    await runInDurableObject(stub, (_agent: ThreadAgent, state) => {
      expect(storageVersion(state.storage.sql)).toBe(STORAGE_VERSION);
      // Back to the old layout: no version table, the outbox as the old code created it, rows waiting.
      state.storage.sql.exec("DROP TABLE tl_schema_version");
      state.storage.sql.exec("DROP TABLE tl_outbox");
      state.storage.sql.exec("CREATE TABLE IF NOT EXISTS tl_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, op TEXT NOT NULL, created_at INTEGER NOT NULL)");
      for (const op of legacyOps) state.storage.sql.exec("INSERT INTO tl_outbox (op, created_at) VALUES (?, ?)", JSON.stringify(op), Date.now());
    });
    await evictDurableObject(stub);
    expect(await messageRows(t.threadId, { sync: false })).toEqual([]);

    // The next request wakes a new instance: it upgrades, then drains what the old one left.
    await eventually(
      () => status(t.threadId, t.apiKey),
      (n) => n === 0,
      15_000,
      200,
    );
    const rows = await eventually(
      () => messageRows(t.threadId),
      (r) => r.length === 2,
      15_000,
      200,
    );
    expect(rows.map((r) => [r.id, r.role, r.parts])).toEqual([
      ["legacy-u", "user", [{ type: "text", text: "written before versions" }]],
      ["legacy-a", "assistant", [{ type: "text", text: "final answer" }]],
    ]);
    expect(rows[1]).toMatchObject({ model: "fake-model", inputTokens: 9, outputTokens: 2 });
    expect(await runInDurableObject(stub, (_agent: ThreadAgent, state) => storageVersion(state.storage.sql))).toBe(STORAGE_VERSION);
  });

  it("leaves storage a newer release upgraded alone after a rollback, and keeps working on it", async () => {
    const t = await newThread();
    const newer = STORAGE_VERSION + 1;
    const stub = agentOf(t.threadId);
    expect(await status(t.threadId, t.apiKey)).toBe(0);
    await runInDurableObject(stub, (_agent: ThreadAgent, state) => {
      // What a newer release may have done: expand only (a defaulted column, a new table).
      state.storage.sql.exec("ALTER TABLE tl_outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0");
      state.storage.sql.exec("CREATE TABLE tl_future (k TEXT PRIMARY KEY)");
      state.storage.sql.exec("UPDATE tl_schema_version SET version = ?", newer);
    });
    await evictDurableObject(stub);

    const res = await fetchApp(
      `/api/v1/threads/${t.threadId}/messages`,
      { method: "POST", headers: { "content-type": "application/json", accept: "application/json" }, body: JSON.stringify({ text: "after the rollback" }) },
      t.apiKey,
    );
    expect(res.status).toBe(200);
    const rows = await eventually(
      () => messageRows(t.threadId),
      (r) => r.length === 2,
      15_000,
      200,
    );
    expect(rows.map((r) => r.role)).toEqual(["user", "assistant"]);
    expect(rows[0]!.parts).toEqual([{ type: "text", text: "after the rollback" }]);
    expect(await runInDurableObject(stub, (_agent: ThreadAgent, state) => storageVersion(state.storage.sql))).toBe(newer);
  });

  it("applies steps in order from the recorded version; a step that throws is rolled back and retried on the next run", async () => {
    const t = await newThread();
    const stub = agentOf(t.threadId);
    expect(await status(t.threadId, t.apiKey)).toBe(0);
    await runInDurableObject(stub, (_agent: ThreadAgent, state) => {
      const V = STORAGE_VERSION;
      const applied: string[] = [];
      let failOnce = true;
      const steps = [
        ...STORAGE_STEPS,
        (sql: SqlStorage) => (applied.push("create"), sql.exec("CREATE TABLE tl_probe (k TEXT PRIMARY KEY)")),
        (sql: SqlStorage) => {
          applied.push("fill");
          sql.exec("INSERT INTO tl_probe (k) VALUES ('half-done')");
          if (failOnce) {
            failOnce = false;
            throw new Error("step failed");
          }
          sql.exec("ALTER TABLE tl_probe ADD COLUMN v TEXT");
        },
      ];
      expect(upgradeStorage(state.storage)).toEqual({ from: V, to: V });
      expect(() => upgradeStorage(state.storage, steps)).toThrow("step failed");
      expect(applied).toEqual(["create", "fill"]);
      // The first new step committed with its version; the failed one's insert was rolled back with it.
      expect(storageVersion(state.storage.sql)).toBe(V + 1);
      expect(state.storage.sql.exec("SELECT count(*) AS n FROM tl_probe").one().n).toBe(0);
      expect(upgradeStorage(state.storage, steps)).toEqual({ from: V + 1, to: V + 2 });
      expect(applied).toEqual(["create", "fill", "fill"]);
      expect(state.storage.sql.exec("SELECT k, v FROM tl_probe").toArray()).toEqual([{ k: "half-done", v: null }]);
      expect(upgradeStorage(state.storage, steps)).toEqual({ from: V + 2, to: V + 2 });
      expect(applied).toHaveLength(3);
      // This release's code, older than that storage, leaves it alone.
      expect(upgradeStorage(state.storage)).toEqual({ from: V + 2, to: V + 2 });
      expect(storageVersion(state.storage.sql)).toBe(V + 2);
    });
  });
});
