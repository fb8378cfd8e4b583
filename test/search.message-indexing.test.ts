import { runInDurableObject } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import type { ThreadAgent } from "../src/agent/thread-agent.ts";
import { withDb } from "../src/db/client.ts";
import { applyMessageOps } from "../src/db/messages.ts";
import { env } from "./support/env.ts";
import { ChatClient, eventually, fetchApp, httpTurn, messageRows, threadAgent as agent, threadsForEachTest } from "./support/helpers.ts";
import { uniqueWord } from "./support/search.ts";

const newThread = threadsForEachTest();

/** One snapshot of a thread's messages, its indexed messages and its queue (one statement: one moment). */
const snapshot = (threadId: string) =>
  withDb(env, async (db) => {
    const { rows } = await db.execute<{ messages: number; indexed: number; queued: number }>(sql`
      select (select count(*)::int from messages where thread_id = ${threadId}::uuid) as messages,
        (select count(distinct message_id)::int from message_chunks where thread_id = ${threadId}::uuid) as indexed,
        (select count(*)::int from message_index_queue where thread_id = ${threadId}::uuid) as queued`);
    return rows[0]!;
  });
const embeddingCalls = async (contains: string) =>
  (await (await fetch(`${env.OPENAI_FAKE_URL.replace(/\/v1$/, "")}/__embeddings?contains=${encodeURIComponent(contains)}`)).json()) as string[][];
const search = async (q: string, key: string) =>
  ((await (await fetchApp(`/api/v1/search?${new URLSearchParams({ q, scope: "messages" })}`, {}, key)).json()) as { results: { messageId: string }[] }).results;

/** The moment every queued message of the thread is indexed. */
const indexed = (threadId: string, messages: number) =>
  eventually(
    () => snapshot(threadId),
    (s) => s.messages === messages && s.queued === 0,
    30_000,
    50,
  );

describe("message indexing", () => {
  it("a turn's messages reach Postgres without waiting for their embeddings, and are indexed once the thread is quiet: one call for both", async () => {
    const t = await newThread();
    const w = uniqueWord();
    expect((await httpTurn(t.threadId, `Where is the ${w} harbour?`, t.apiKey)).status).toBe(200);
    expect(await indexed(t.threadId, 2)).toEqual({ messages: 2, indexed: 2, queued: 0 });
    const calls = await embeddingCalls(`Where is the ${w} harbour?`);
    expect(calls).toEqual([[`Where is the ${w} harbour?`, `Echo: Where is the ${w} harbour?`]]);
    expect((await search(w, t.apiKey)).length).toBe(2);
  });

  it("turns back to back are indexed together once they stop, not one by one beside the next turn", async () => {
    const t = await newThread();
    const w = uniqueWord();
    const client = await ChatClient.connect(t.threadId, t.apiKey);
    for (let k = 0; k < 3; k++) await client.response(client.sendChat(`Turn ${k} on the ${w} jetty.`).requestId);
    client.close();
    expect(await indexed(t.threadId, 6)).toEqual({ messages: 6, indexed: 6, queued: 0 });
    const calls = await embeddingCalls(`on the ${w} jetty.`);
    expect(calls.flat().sort()).toEqual([0, 1, 2].flatMap((k) => [`Turn ${k} on the ${w} jetty.`, `Echo: Turn ${k} on the ${w} jetty.`]).sort());
    // One call: each turn here takes far less than the indexer's quiet time, which a turn running keeps from ending.
    expect(calls.length).toBe(1);
  });

  it("an eviction before the thread goes quiet loses nothing: a durable schedule backs the timer, and an agent that did not queue the messages indexes them", async () => {
    const t = await newThread();
    const w = uniqueWord();
    expect((await httpTurn(t.threadId, `Kept for the ${w} quay.`, t.apiKey)).status).toBe(200);
    const scheduled = await eventually(
      () => runInDurableObject(agent(t.threadId), async (a: ThreadAgent) => (await a.listSchedules()).map((s) => s.callback)),
      (callbacks) => callbacks.includes("retryIndex"),
      10_000,
      20,
    );
    expect(scheduled).toContain("retryIndex");
    // A thread whose messages were queued by an agent since evicted: a fresh one, on the schedule's call, reads the queue.
    const other = await newThread();
    await withDb(env, (db) =>
      applyMessageOps(db, other.threadId, [{ op: "upsert", message: { id: "m1", role: "user", parts: [{ type: "text", text: `Left by the ${w} slipway.` }] } }]),
    );
    expect(await snapshot(other.threadId)).toEqual({ messages: 1, indexed: 0, queued: 1 });
    await runInDurableObject(agent(other.threadId), (a: ThreadAgent) => a.retryIndex());
    expect(await snapshot(other.threadId)).toEqual({ messages: 1, indexed: 1, queued: 0 });
    expect((await search(`${w} slipway`, other.apiKey)).length).toBe(1);
  });

  it("messages the embedder fails stay queued and are indexed when it is back", async () => {
    const t = await newThread();
    const w = uniqueWord();
    expect((await httpTurn(t.threadId, `[embed-flaky] A note on ${w} tides.`, t.apiKey)).status).toBe(200);
    expect(await indexed(t.threadId, 2)).toEqual({ messages: 2, indexed: 2, queued: 0 });
    // The first run's call spent its retries on the three failures; the retried run's call indexes both.
    expect((await embeddingCalls(`[embed-flaky] A note on ${w}`)).length).toBe(4);
    expect((await search(w, t.apiKey)).length).toBe(2);
  });
});

describe("the outbox's batches", () => {
  it("turns back to back: each turn's two messages go to Postgres in one transaction", async () => {
    const t = await newThread("Batches");
    const client = await ChatClient.connect(t.threadId, t.apiKey);
    // The next turn's message is recorded while the last turn's batch is still being written: it waits for its own turn's batch.
    for (let k = 0; k < 6; k++) await client.response(client.sendChat(`Turn ${k} of the batches.`).requestId);
    client.close();
    await messageRows(t.threadId);
    const rows = await withDb(
      env,
      async (db) => (await db.execute<{ role: string; tx: string }>(sql`select role, xmin::text as tx from messages where thread_id = ${t.threadId}::uuid order by seq`)).rows,
    );
    expect(rows.map((r) => r.role)).toEqual(Array.from({ length: 6 }, () => ["user", "assistant"]).flat());
    // Never split across two (two turns may share one, when the second ends while the first's is in flight).
    const split = rows.flatMap((r, i) => (r.role === "user" && rows[i + 1]!.tx !== r.tx ? [i / 2] : []));
    expect(split).toEqual([]);
  });
});
