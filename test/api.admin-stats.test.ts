import { env } from "./support/env.ts";
import { describe, expect, it } from "vitest";
import { userAuthority } from "../src/authority/client.ts";
import { withDb } from "../src/db/client.ts";
import { messages } from "../src/db/schema.ts";
import { ChatClient, eventually, fetchApp, threadsForEachTest } from "./support/helpers.ts";

const newThread = threadsForEachTest();

type Stats = {
  window: { hours: number; since: string };
  users: { total: number; created: number; active: number };
  threads: { total: number; created: number; active: number };
  messages: { user: number; assistant: number };
  tokens: { input: number; output: number };
  models: { model: string; turns: number; inputTokens: number; outputTokens: number }[];
  tools: { name: string; calls: number; errors: number }[];
  search: { calls: number; cached: number; cacheHitRatio: number | null };
  outbox: { threads: number; messages: number } | null;
};
const stats = async (query = "") => {
  const res = await fetchApp(`/api/v1/admin/stats${query}`);
  expect(res.status).toBe(200);
  return (await res.json()) as Stats;
};

describe("GET /api/v1/admin/stats", () => {
  it("is the admin's alone, and refuses a bad window", async () => {
    const { apiKey } = await newThread();
    expect((await fetchApp("/api/v1/admin/stats", {}, null)).status).toBe(401);
    const forbidden = await fetchApp("/api/v1/admin/stats", {}, apiKey);
    expect(forbidden.status).toBe(403);
    expect(await forbidden.json()).toMatchObject({ error: { code: "forbidden" } });
    for (const hours of ["0", "721", "soon"]) {
      const res = await fetchApp(`/api/v1/admin/stats?hours=${hours}`);
      expect(res.status).toBe(422);
      expect(await res.json()).toMatchObject({ error: { code: "validation_failed" } });
    }
  });

  it("counts the window's turns, tokens by model, tool calls with their errors, and search cache hits", async () => {
    // Other test files run at the same time: compare before and after, by at least what this test did.
    const before = await stats("?hours=1");
    const { threadId, apiKey, userId } = await newThread();
    const client = await ChatClient.connect(threadId, apiKey);
    const turn = async (text: string) => (await client.response(client.sendChat(text, []).requestId)).error;
    const query = `search the ${crypto.randomUUID()} archive`;
    expect(await turn(query)).toBeUndefined();
    expect(await turn(query)).toBeUndefined(); // answered from the cache
    expect(await turn("hello there")).toBeUndefined();
    client.close();
    // Tool failures as persisted: a structured search failure and a tool that threw.
    await withDb(env, (db) =>
      db.insert(messages).values({
        threadId,
        id: `a-${crypto.randomUUID()}`,
        role: "assistant",
        parts: [
          { type: "tool-hybrid_search", toolCallId: "c1", state: "output-available", input: { query: "x" }, output: { status: "search_unavailable", message: "down" } },
          { type: "tool-current_time", toolCallId: "c2", state: "output-error", input: {}, errorText: "boom" },
        ],
      }),
    );
    // Messages and spend reach Postgres in the background (the outboxes): read once they have. The
    // user's authority holds the ledger for a minute (it batches): each read has it write what it holds, as the usage routes do.
    const model = (s: Stats) => s.models.find((m) => m.model === "fake-model") ?? { turns: 0, outputTokens: 0 };
    const after = await eventually(
      async () => (await userAuthority(env, userId).flushLedger(), stats("?hours=1")),
      (a) => a.messages.assistant - before.messages.assistant >= 4 && model(a).turns - model(before).turns >= 3,
    );
    expect(after.window.hours).toBe(1);
    expect(after.threads.active - before.threads.active).toBeGreaterThanOrEqual(1);
    expect(after.messages.assistant - before.messages.assistant).toBeGreaterThanOrEqual(4);
    expect(model(after).turns - model(before).turns).toBeGreaterThanOrEqual(3);
    expect(model(after).outputTokens).toBeGreaterThan(model(before).outputTokens);
    const tool = (s: Stats, name: string) => s.tools.find((t) => t.name === name) ?? { calls: 0, errors: 0 };
    expect(tool(after, "hybrid_search").calls - tool(before, "hybrid_search").calls).toBeGreaterThanOrEqual(3);
    expect(tool(after, "hybrid_search").errors - tool(before, "hybrid_search").errors).toBeGreaterThanOrEqual(1);
    expect(tool(after, "current_time").errors - tool(before, "current_time").errors).toBeGreaterThanOrEqual(1);
    expect(after.search.calls).toBe(tool(after, "hybrid_search").calls);
    expect(after.search.cached - before.search.cached).toBeGreaterThanOrEqual(1);
    expect(after.search.cacheHitRatio).toBeCloseTo(after.search.cached / after.search.calls);
    expect(after.outbox).toMatchObject({ threads: expect.any(Number), messages: expect.any(Number) });
  });
});
