import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { ThreadAgent } from "../src/agent/thread-agent.ts";
import { withDb } from "../src/db/client.ts";
import { listSummaries } from "../src/db/messages.ts";
import { messages as messagesTable } from "../src/db/schema.ts";
import { env } from "./support/env.ts";
import { ChatClient, eventually, fetchApp, httpTurn, messageRows, sendJson, threadsForEachTest, threadAgent as agentOf } from "./support/helpers.ts";

const newThread = threadsForEachTest();

type Recorded = { userText: string; model: string; chars: number; at: number };
const requests = async (): Promise<Recorded[]> => (await (await fetch(`${env.OPENAI_FAKE_URL.replace(/\/v1$/, "")}/__requests`)).json()) as Recorded[];

const setFlag = async (threadId: string, flag: string, value: unknown) =>
  expect((await sendJson("PUT", `/api/v1/admin/threads/${threadId}/flags/${flag}`, { value })).status).toBe(200);

/**
 * Writes a long history straight into Postgres, as an older thread would have it, before its agent
 * first wakes (which loads it, up to 10,000 messages). Every third reply called a tool.
 */
async function seed(threadId: string, exchanges: number, text: (i: number) => string) {
  const rows = Array.from({ length: exchanges }, (_, i) => [
    { threadId, id: `u${i}`, role: "user", parts: [{ type: "text", text: text(i) }] },
    {
      threadId,
      id: `a${i}`,
      role: "assistant",
      parts: [
        ...(i % 3 === 2
          ? [{ type: "tool-current_time", toolCallId: `call-${i}`, state: "output-available", input: {}, output: { iso: "2026-01-01T00:00:00Z", timeZone: "UTC", local: "x" } }]
          : []),
        { type: "text", text: `Answer ${i}: noted.` },
      ],
      metadata: { model: "fake-model", offline: false },
    },
  ]).flat();
  await withDb(env, async (db) => {
    for (let i = 0; i < rows.length; i += 1000) await db.insert(messagesTable).values(rows.slice(i, i + 1000));
  });
}

type Part = { type: string; data?: { summarizedThrough: string; messages: number } };
const compactionOf = (turn: { messages: { parts: Part[] }[] }) => turn.messages[1]!.parts.find((p) => p.type === "data-compaction")?.data;
const turnJson = async (res: Response) => {
  expect(res.status).toBe(200);
  return (await res.json()) as { messages: { id: string; role: string; parts: Part[] }[] };
};

describe("the context window", () => {
  it("a thread of thousands of messages still turns; every request the model gets stays within the budget; the cut stays put", async () => {
    const t = await newThread();
    const budget = 6000;
    const model = `fake-model-${crypto.randomUUID().slice(0, 8)}`;
    await seed(t.threadId, 1500, (i) => `Question ${i} about the harbour timetable, ferry ${i % 17} and its fares.`);
    await setFlag(t.threadId, "context_budget_tokens", budget);
    await setFlag(t.threadId, "turn_max_output_tokens", 512);
    await setFlag(t.threadId, "chat_model", model);

    const first = await turnJson(await httpTurn(t.threadId, "What did I ask about ferry 3?", t.apiKey));
    expect(first.messages[1]!.parts.find((p) => p.type === "text")).toMatchObject({ text: "Echo: What did I ask about ferry 3?" });
    const compaction = compactionOf(first)!;
    // The cut falls after a reply and before a question: a tool call and its result are never apart.
    expect(compaction.summarizedThrough).toMatch(/^a\d+$/);
    expect(compaction.messages).toBeGreaterThan(2900);
    const sent = (await requests()).filter((r) => r.model === model);
    // The summary, then the turn; each within the budget (about 4 characters a token).
    expect(sent.map((r) => r.userText)).toEqual(["Summarize the conversation so far.", "What did I ask about ferry 3?"]);
    for (const r of sent) expect(r.chars / 4).toBeLessThanOrEqual(budget);

    // History, the API and the export stay whole: the summary replaced messages for the model only.
    expect((await messageRows(t.threadId)).length).toBe(3002);
    const exported = (await (await fetchApp(`/api/v1/threads/${t.threadId}/export`, {}, t.apiKey)).json()) as { messages: unknown[] };
    expect(exported.messages.length).toBe(3002);

    // The next turns keep the cut (one summary, the same prompt prefix) and send no compaction part.
    for (const text of ["And ferry 4?", "Thanks."]) expect(compactionOf(await turnJson(await httpTurn(t.threadId, text, t.apiKey)))).toBeUndefined();
    const stored = await runInDurableObject(agentOf(t.threadId), (_a: ThreadAgent, state) =>
      state.storage.sql.exec<{ through_id: string }>("SELECT through_id FROM tl_summaries").toArray(),
    );
    expect(stored).toEqual([{ through_id: compaction.summarizedThrough }]);
    expect((await requests()).filter((r) => r.model === model && r.userText.startsWith("Summarize")).length).toBe(1);

    // Beside the messages in Postgres, covering their seq range.
    const [summary] = await eventually(
      () => withDb(env, (db) => listSummaries(db, t.threadId)),
      (s) => s.length === 1,
    );
    const rows = await messageRows(t.threadId);
    expect(summary).toMatchObject({
      throughMessageId: compaction.summarizedThrough,
      fromSeq: rows[0]!.seq,
      toSeq: rows.find((r) => r.id === compaction.summarizedThrough)!.seq,
      messageCount: compaction.messages,
    });
    expect(summary!.text).toMatch(/^Summary: \d+ lines/);
  });

  it("a summary that fails falls back to leaving out the oldest turns, and the turn still answers within the budget", async () => {
    const t = await newThread();
    const model = `fake-model-${crypto.randomUUID().slice(0, 8)}`;
    // The summary request carries the old messages, and the fake model fails any request holding "[fail]".
    await seed(t.threadId, 400, (i) => `Old question ${i} [fail] with some words to take room in the context.`);
    await setFlag(t.threadId, "context_budget_tokens", 4000);
    await setFlag(t.threadId, "turn_max_output_tokens", 256);
    await setFlag(t.threadId, "chat_model", model);
    const turn = await turnJson(await httpTurn(t.threadId, "Still there?", t.apiKey));
    expect(turn.messages[1]!.parts.find((p) => p.type === "text")).toMatchObject({ text: "Echo: Still there?" });
    expect(compactionOf(turn)?.summarizedThrough).toMatch(/^a\d+$/);
    const sent = (await requests()).filter((r) => r.model === model);
    expect(sent.map((r) => r.userText).filter((u) => u.startsWith("Summarize")).length).toBeGreaterThan(0);
    const main = sent.find((r) => r.userText === "Still there?")!;
    expect(main.chars / 4).toBeLessThanOrEqual(4000);
    expect(await runInDurableObject(agentOf(t.threadId), (_a: ThreadAgent, state) => state.storage.sql.exec("SELECT id FROM tl_summaries").toArray().length)).toBe(0);
  });

  it("a context-length error from the provider compacts and retries once, before the client sees anything", async () => {
    const t = await newThread();
    const model = `fake-model-${crypto.randomUUID().slice(0, 8)}`;
    await seed(t.threadId, 500, (i) => `Note ${i}: the tide tables for the harbour at dawn, dusk and noon, in winter and in summer.`);
    // By the estimate everything fits; the provider's own window is smaller (the marker sets it for the fake model).
    await setFlag(t.threadId, "context_budget_tokens", 200_000);
    await setFlag(t.threadId, "chat_model", model);
    const text = "[context-limit:100000] what about noon?";
    const turn = await turnJson(await httpTurn(t.threadId, text, t.apiKey));
    expect(turn.messages[1]!.parts.find((p) => p.type === "text")).toMatchObject({ text: `Echo: ${text}` });
    expect(compactionOf(turn)?.messages).toBeGreaterThan(0);
    const tries = (await requests()).filter((r) => r.model === model && r.userText === text);
    expect(tries.length).toBe(2);
    expect(tries[0]!.chars).toBeGreaterThan(100_000);
    expect(tries[1]!.chars).toBeLessThanOrEqual(100_000);
  });

  it("a context the provider refuses even compacted fails with a clear error, and keeps the user's message", async () => {
    const t = await newThread();
    await seed(t.threadId, 50, (i) => `Note ${i}.`);
    const client = await ChatClient.connect(t.threadId, t.apiKey);
    const { requestId, message } = client.sendChat("[context-limit:100] hello");
    const reply = await client.response(requestId);
    expect(reply.error?.body).toMatch(/no longer fits the model's context window/);
    expect((await messageRows(t.threadId)).some((r) => r.id === message.id)).toBe(true);
    client.close();
  });
});
