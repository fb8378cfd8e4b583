import { env } from "./support/env.ts";
import { describe, expect, it } from "vitest";
import { withDb } from "../src/db/client.ts";
import { applyMessageOps } from "../src/db/messages.ts";
import { ChatClient, fetchApp, messageRows, threadsForEachTest } from "./support/helpers.ts";

const newThread = threadsForEachTest();

describe("a thread agent that wakes without the history Postgres has", () => {
  it("loads it first, serves it, and continues the thread after it without writing it twice", async () => {
    const { apiKey, threadId } = await newThread();
    // History the agent never saw: written before its storage was lost, or by another path.
    await withDb(env, (db) =>
      applyMessageOps(db, threadId, [
        { op: "upsert", message: { id: "old-1", role: "user", parts: [{ type: "text", text: "from before" }] } },
        { op: "upsert", message: { id: "old-2", role: "assistant", parts: [{ type: "text", text: "I remember" }], metadata: { model: "m" } } },
      ]),
    );
    const before = await messageRows(threadId);
    const history = (await (await fetchApp(`/agents/thread-agent/${threadId}/get-messages`, {}, apiKey)).json()) as { id: string }[];
    expect(history.map((m) => m.id)).toEqual(["old-1", "old-2"]);

    const client = await ChatClient.connect(threadId, apiKey);
    const { requestId, message } = client.sendChat("and now?");
    expect((await client.response(requestId)).text).toBe("Echo: and now?");
    client.close();
    const after = await messageRows(threadId);
    expect(after.map((r) => r.id)).toEqual(["old-1", "old-2", message.id, expect.any(String)]);
    expect(after.slice(0, 2).map((r) => r.seq)).toEqual(before.map((r) => r.seq));
  });
});

describe("a thread with a second client watching", () => {
  it("sends that client the whole transcript as a turn starts, never the new message alone; a lone client's turns keep the whole thread too", async () => {
    const { apiKey, threadId } = await newThread();
    const a = await ChatClient.connect(threadId, apiKey);
    // Alone on the thread: the request carries the new message only (src/agent/gate.ts); the thread still keeps everything.
    const first = a.sendChat("one");
    await a.response(first.requestId);
    const b = await ChatClient.connect(threadId, apiKey);
    const seen = b.frames.length;
    const second = a.sendChat("two");
    await Promise.all([a.response(second.requestId), b.waitFor((f) => f.type === "cf_agent_use_chat_response" && f.id === second.requestId && f.done)]);
    const lists = b.frames
      .slice(seen)
      .filter((f) => f.type === "cf_agent_chat_messages")
      .map((f) => (f.messages as { id: string }[]).map((m) => m.id));
    expect(lists.length).toBeGreaterThan(0);
    for (const ids of lists) expect(ids.slice(0, 3)).toEqual([first.message.id, expect.any(String), second.message.id]);
    const rows = await messageRows(threadId);
    expect(rows.map((r) => r.id)).toEqual([first.message.id, lists[0]![1], second.message.id, expect.any(String)]);
    a.close();
    b.close();
  });
});

describe("two clients sending on one thread at the same moment", () => {
  it("queues the turns: both are answered, each its own message, in one order everywhere", async () => {
    const { apiKey, threadId } = await newThread();
    const [a, b] = await Promise.all([ChatClient.connect(threadId, apiKey), ChatClient.connect(threadId, apiKey)]);
    const first = a.sendChat("first [slow]");
    const second = b.sendChat("second");
    const [ra, rb] = await Promise.all([a.response(first.requestId), b.response(second.requestId)]);
    expect(ra.text).toBe("Echo: first [slow]");
    expect(rb.text).toBe("Echo: second");
    const agentView = (await (await fetchApp(`/agents/thread-agent/${threadId}/get-messages`, {}, apiKey)).json()) as { id: string; role: string }[];
    const rows = await messageRows(threadId);
    expect(rows.map((r) => r.id)).toEqual(agentView.map((m) => m.id));
    // Which arrived first is up to the network; whichever did is answered first.
    const users = rows.filter((r) => r.role === "user");
    expect(users.map((r) => r.id).sort()).toEqual([first.message.id, second.message.id].sort());
    const replies = rows.filter((r) => r.role === "assistant").map((r) => JSON.stringify(r.parts));
    expect(replies).toHaveLength(2);
    for (const [i, u] of users.entries()) expect(replies[i]).toContain(`Echo: ${(u.parts as { text: string }[])[0]!.text}`);
    a.close();
    b.close();
  });

  it("keeps one client's back-to-back messages in the order it sent them", async () => {
    const { apiKey, threadId } = await newThread();
    const client = await ChatClient.connect(threadId, apiKey);
    const sent = ["one", "two", "three"].map((text) => client.sendChat(text));
    const replies = await Promise.all(sent.map((s) => client.response(s.requestId)));
    expect(replies.map((r) => r.text)).toEqual(["Echo: one", "Echo: two", "Echo: three"]);
    const rows = await messageRows(threadId);
    expect(rows.filter((r) => r.role === "user").map((r) => r.id)).toEqual(sent.map((s) => s.message.id));
    client.close();
  });
});
