import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { ThreadAgent } from "../src/agent/thread-agent.ts";
import { withDb } from "../src/db/client.ts";
import { messages as messagesTable } from "../src/db/schema.ts";
import { env } from "./support/env.ts";
import { ChatClient, eventually, fetchApp, threadsForEachTest, threadAgent } from "./support/helpers.ts";

const newThread = threadsForEachTest();

describe("long threads and titles without a model", () => {
  it("a long thread is summarized by the offline heuristic, deterministically, and the client sees the compaction in the turn's stream", async () => {
    const t = await newThread();
    const rows = Array.from({ length: 600 }, (_, i) => [
      { threadId: t.threadId, id: `u${i}`, role: "user", parts: [{ type: "text", text: `Question ${i}: what is the tide at dawn? More words here.` }] },
      { threadId: t.threadId, id: `a${i}`, role: "assistant", parts: [{ type: "text", text: `Answer ${i}. Low.` }] },
    ]).flat();
    await withDb(env, (db) => db.insert(messagesTable).values(rows));
    const client = await ChatClient.connect(t.threadId, t.apiKey);
    const reply = await client.response(client.sendChat("and at dusk?").requestId);
    expect(reply.error).toBeUndefined();
    // Streamed with the turn, right after its start, before any text.
    const kinds = reply.chunks.map((c) => c.type);
    expect(kinds.indexOf("data-compaction")).toBe(kinds.indexOf("start") + 1);
    const part = reply.chunks.find((c) => c.type === "data-compaction");
    expect(part.data).toEqual({ summarizedThrough: expect.stringMatching(/^a\d+$/), messages: expect.any(Number) });
    const stored = await runInDurableObject(threadAgent(t.threadId), (_a: ThreadAgent, state) =>
      state.storage.sql.exec<{ text: string; model: string; messages: number }>("SELECT text, model, messages FROM tl_summaries").toArray(),
    );
    expect(stored).toEqual([
      {
        model: "threadline-offline",
        messages: part.data.messages,
        text: expect.stringMatching(new RegExp(`^Earlier in this conversation \\(${part.data.messages} messages\\):\\n- User: Question 0: what is the tide at dawn\\?\\n`)),
      },
    ]);
    client.close();
  });

  it("titles a new thread from its first message by the offline heuristic", async () => {
    const t = await newThread();
    const client = await ChatClient.connect(t.threadId, t.apiKey);
    await client.response(client.sendChat("Hi! Could you help me plan a trip to Lisbon in May?").requestId);
    expect(await client.waitFor((f) => f.type === "thread_title")).toEqual({ type: "thread_title", threadId: t.threadId, title: "Plan a trip to Lisbon in" });
    const title = await eventually(
      async () => ((await (await fetchApp(`/api/v1/threads/${t.threadId}`, {}, t.apiKey)).json()) as { thread: { title: string | null } }).thread.title,
      (v) => v !== null,
    );
    expect(title).toBe("Plan a trip to Lisbon in");
    client.close();
  });
});
