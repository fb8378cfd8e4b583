import { env } from "./support/env.ts";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { ThreadAgent } from "../src/agent/thread-agent.ts";
import type { UserAuthority } from "../src/authority/user-authority.ts";
import { ChatClient, eventually, fetchApp, messageRows, threadAgent as agent, threadsForEachTest } from "./support/helpers.ts";

const newThread = threadsForEachTest();
type Status = { outbox: { backlog: number; quarantined: number; retryAttempt: number } };
const status = async (threadId: string, key: string) => (await (await fetchApp(`/api/v1/threads/${threadId}/status`, {}, key)).json()) as Status;

describe("text Postgres cannot store, over WebSocket", () => {
  it("is refused where it enters (a NUL, a lone surrogate, in the text or anywhere in the frame), and the thread goes on recording", async () => {
    const { threadId, apiKey } = await newThread();
    const client = await ChatClient.connect(threadId, apiKey);
    for (const text of ["nul \u0000 here", "lone \ud800 surrogate", "low \udc00 alone"]) {
      const { requestId } = client.sendChat(text);
      const refused = await client.waitFor((f) => f.id === requestId && f.error === true);
      expect(refused).toMatchObject({ code: "validation_failed", done: true, outcome: "error", body: expect.stringContaining("cannot be stored") });
    }
    client.send({ type: "cf_agent_use_chat_request", id: "r-bad", extra: { "k\u0000": 1 }, init: { method: "POST", body: "{}" } });
    await client.waitFor((f) => f.id === "r-bad" && f.code === "validation_failed");
    const { requestId, message } = client.sendChat("a valid pair \ud83d\udc4d is fine");
    expect((await client.response(requestId)).text).toBe("Echo: a valid pair \ud83d\udc4d is fine");
    client.close();
    expect((await messageRows(threadId)).map((r) => r.id)).toEqual([message.id, expect.any(String)]);
  });

  it("written by the model is made storable (U+FFFD) before it is kept, and reaches Postgres with the turn's spend", async () => {
    const { threadId, apiKey, userId } = await newThread();
    const client = await ChatClient.connect(threadId, apiKey);
    const reply = await client.response(client.sendChat("say something [unstorable]").requestId);
    expect(reply.error).toBeUndefined();
    const next = await client.response(client.sendChat("and after that").requestId);
    expect(next.text).toBe("Echo: and after that");
    client.close();
    const rows = await messageRows(threadId);
    expect(rows).toHaveLength(4);
    expect(JSON.stringify(rows[1]!.parts)).toContain("bad \ufffd and \ufffd here");
    const transcript = await runInDurableObject(agent(threadId), (a: ThreadAgent) => JSON.stringify(a.messages[1]!.parts));
    expect(transcript).toContain("bad \ufffd and \ufffd here");
    const usage = (await (await fetchApp("/api/v1/users/me/usage", {}, apiKey)).json()) as { usage: { turns: number; totalTokens: number } };
    expect(usage.usage.turns).toBe(2);
    expect(usage.usage.totalTokens).toBeGreaterThan(0);
    expect(userId).toBeTruthy();
  });
});

describe("the outbox's quarantine", () => {
  it("sets aside a change Postgres refuses for good, records the changes after it, shows it everywhere, and lets the admin retry or drop it", async () => {
    const { threadId, apiKey } = await newThread();
    const client = await ChatClient.connect(threadId, apiKey);
    await client.response(client.sendChat("first").requestId);
    // A change Postgres will never take (as one written before text was checked at the edge), then ordinary turns.
    const seq = await runInDurableObject(agent(threadId), (_a: ThreadAgent, state) => {
      const op = { op: "upsert", message: { id: "poison", role: "user", parts: [{ type: "text", text: "nul \u0000" }] } };
      return Number(state.storage.sql.exec("INSERT INTO tl_outbox (op, created_at) VALUES (?, ?) RETURNING seq", JSON.stringify(op), Date.now()).one().seq);
    });
    const { message } = client.sendChat("after the poison");
    await client.waitFor((f) => f.type === "cf_agent_use_chat_response" && f.done);
    await client.response(client.sendChat("and again").requestId);
    client.close();
    const rows = await eventually(
      () => messageRows(threadId),
      (r) => r.length === 6,
    );
    expect(rows.map((r) => r.id)).not.toContain("poison");
    expect(rows.map((r) => r.id)).toContain(message.id);
    const s = await status(threadId, apiKey);
    expect(s.outbox).toMatchObject({ backlog: 0, quarantined: 1, retryAttempt: 0 });
    const health = await eventually(
      async () => (await (await fetchApp("/health", {}, null)).json()) as { outbox: { quarantined: { threads: number; rows: number } } },
      (h) => h.outbox.quarantined.rows >= 1,
    );
    expect(health.outbox.quarantined.threads).toBeGreaterThanOrEqual(1);
    const stats = (await (await fetchApp("/api/v1/admin/stats?hours=1")).json()) as { outbox: { quarantined: { rows: number } } };
    expect(stats.outbox.quarantined.rows).toBeGreaterThanOrEqual(1);
    const listed = (await (await fetchApp(`/api/v1/admin/threads/${threadId}/quarantine`)).json()) as { changes: { seq: number; error: string }[] };
    expect(listed.changes).toEqual([expect.objectContaining({ seq: expect.any(Number), error: expect.stringMatching(/22P05|unsupported Unicode|\\u0000/i) })]);
    expect(listed.changes[0]!.seq).toBe(seq);
    const all = (await (await fetchApp("/api/v1/admin/quarantine")).json()) as { threads: { threadId: string }[] };
    expect(all.threads.map((t) => t.threadId)).toContain(threadId);
    // Only the admin; a retry of what Postgres still refuses puts it back in quarantine; a drop ends it.
    expect((await fetchApp(`/api/v1/admin/threads/${threadId}/quarantine`, {}, apiKey)).status).toBe(403);
    const q = listed.changes[0]!.seq;
    const retried = await fetchApp(`/api/v1/admin/threads/${threadId}/quarantine/${q}/retry`, { method: "POST" });
    expect(await retried.json()).toEqual({ status: { backlog: 0, quarantined: 1 } });
    expect((await fetchApp(`/api/v1/admin/threads/${threadId}/quarantine/999999/retry`, { method: "POST" })).status).toBe(404);
    expect((await fetchApp(`/api/v1/admin/threads/${threadId}/quarantine/x`, { method: "DELETE" })).status).toBe(404);
    const dropped = await fetchApp(`/api/v1/admin/threads/${threadId}/quarantine/${q}`, { method: "DELETE" });
    expect(await dropped.json()).toEqual({ status: { backlog: 0, quarantined: 0 } });
    expect((await status(threadId, apiKey)).outbox.quarantined).toBe(0);
  });
});

describe("frames the allow-list does not name", () => {
  it("a chat request without init.method takes no turn slot and leaves nothing behind; clear is refused over WebSocket", async () => {
    const { threadId, apiKey, userId } = await newThread();
    const client = await ChatClient.connect(threadId, apiKey);
    await client.response(client.sendChat("kept").requestId);
    const slots = () =>
      runInDurableObject(env.UserAuthority.get(env.UserAuthority.idFromName(userId)), async (_a: UserAuthority, s) => ((await s.storage.get<number[]>("turns")) ?? []).length);
    const before = await slots();
    client.send({
      type: "cf_agent_use_chat_request",
      id: "no-method",
      init: { body: JSON.stringify({ messages: [{ id: "x", role: "user", parts: [{ type: "text", text: "hi" }] }] }) },
    });
    client.send({ type: "cf_agent_use_chat_request", id: "get", init: { method: "GET", body: "{}" } });
    await client.waitFor(() => client.frames.filter((f) => (f.id === "no-method" || f.id === "get") && f.code === "invalid_frame").length === 2);
    client.send({ type: "cf_agent_chat_clear" });
    await client.waitFor((f) => f.type === "error" && f.error.code === "forbidden" && /DELETE \/api\/v1\/threads/.test(f.error.message));
    expect(await slots()).toBe(before);
    client.close();
    expect(await messageRows(threadId)).toHaveLength(2);
  });

  it("clearing is the owner's HTTP call: every client sees it, Postgres follows, and no one else may", async () => {
    const { threadId, apiKey } = await newThread();
    const other = await newThread();
    const client = await ChatClient.connect(threadId, apiKey);
    await client.response(client.sendChat("to be cleared").requestId);
    expect((await fetchApp(`/api/v1/threads/${threadId}/messages`, { method: "DELETE" }, other.apiKey)).status).toBe(404);
    expect(await messageRows(threadId)).toHaveLength(2);
    expect((await fetchApp(`/api/v1/threads/${threadId}/messages`, { method: "DELETE" }, apiKey)).status).toBe(204);
    await client.waitFor((f) => f.type === "cf_agent_chat_clear");
    expect(await messageRows(threadId)).toEqual([]);
    expect(await runInDurableObject(agent(threadId), (a: ThreadAgent) => a.messages.length)).toBe(0);
    expect((await client.response(client.sendChat("a fresh start").requestId)).text).toBe("Echo: a fresh start");
    client.close();
    expect(await messageRows(threadId)).toHaveLength(2);
  });
});
