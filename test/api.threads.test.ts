import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { ThreadAgent } from "../src/agent/thread-agent.ts";
import { ChatClient, fetchApp, messageRows, postJson, sendJson, threadsForEachTest, threadAgent } from "./support/helpers.ts";

const newThread = threadsForEachTest();
type ThreadJson = { id: string; userId: string; title: string | null; createdAt: string; updatedAt: string };

describe("POST /api/v1/threads", () => {
  it("creates a thread for the caller", async () => {
    const { userId, apiKey } = await newThread();
    const res = await postJson("/api/v1/threads", { title: " Plans " }, apiKey);
    expect(res.status).toBe(201);
    const { thread } = (await res.json()) as { thread: ThreadJson };
    expect(thread).toEqual({ id: expect.any(String), userId, title: "Plans", createdAt: expect.any(String), updatedAt: expect.any(String) });
  });

  it("lets the admin create a thread for a user, and answers 404 user_not_found for one that does not exist", async () => {
    const { userId } = await newThread();
    expect((await postJson("/api/v1/threads", { userId })).status).toBe(201);
    const res = await postJson("/api/v1/threads", { userId: crypto.randomUUID() });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { code: "user_not_found", message: expect.any(String) } });
    expect((await postJson("/api/v1/threads", {})).status).toBe(422); // the admin must name the user
  });

  it("rejects a malformed user id, an overlong title and malformed JSON", async () => {
    expect((await postJson("/api/v1/threads", { userId: "42" })).status).toBe(422);
    const { apiKey } = await newThread();
    expect((await postJson("/api/v1/threads", { title: "t".repeat(201) }, apiKey)).status).toBe(422);
    const bad = await fetchApp("/api/v1/threads", { method: "POST", headers: { "content-type": "application/json" }, body: "{" }, apiKey);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe("invalid_json");
  });
});

describe("listing, reading, renaming and deleting threads", () => {
  it("lists the caller's threads newest first, a page at a time", async () => {
    const { apiKey, threadId: first } = await newThread();
    const made = [first];
    for (let i = 0; i < 4; i++) made.push(((await (await postJson("/api/v1/threads", { title: `t${i}` }, apiKey)).json()) as { thread: ThreadJson }).thread.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await fetchApp(`/api/v1/threads?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`, {}, apiKey);
      const page = (await res.json()) as { items: ThreadJson[]; nextCursor: string | null };
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((t) => t.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...made].reverse());
    expect((await fetchApp("/api/v1/threads?cursor=garbage", {}, apiKey)).status).toBe(422);
    expect((await fetchApp("/api/v1/threads?limit=1000", {}, apiKey)).status).toBe(422);
  });

  it("reads and renames a thread", async () => {
    const { apiKey, threadId } = await newThread("old");
    const got = (await (await fetchApp(`/api/v1/threads/${threadId}`, {}, apiKey)).json()) as { thread: ThreadJson; usage: { totalTokens: number } };
    expect(got.thread.title).toBe("old");
    expect(got.usage.totalTokens).toBe(0);
    const renamed = await sendJson("PATCH", `/api/v1/threads/${threadId}`, { title: "new" }, apiKey);
    expect(((await renamed.json()) as { thread: ThreadJson }).thread.title).toBe("new");
    expect((await sendJson("PATCH", `/api/v1/threads/${threadId}`, { title: "" }, apiKey)).status).toBe(422);
  });

  it("deletes a thread: its messages in Postgres and its agent's storage go too", async () => {
    const { apiKey, threadId } = await newThread();
    const client = await ChatClient.connect(threadId, apiKey);
    await client.response(client.sendChat("remember me").requestId);
    client.close();
    expect(await messageRows(threadId)).toHaveLength(2);
    expect((await fetchApp(`/api/v1/threads/${threadId}`, { method: "DELETE" }, apiKey)).status).toBe(204);
    expect(await messageRows(threadId)).toHaveLength(0);
    expect((await fetchApp(`/api/v1/threads/${threadId}`, {}, apiKey)).status).toBe(404);
    const stub = threadAgent(threadId);
    // A read's drain reaching the wiped agent (its outbox's table gone) has nothing to write: it answers, it does not throw.
    expect(await runInDurableObject(stub, (agent: ThreadAgent) => agent.messages.length)).toBe(0);
    // A read's drain that reaches the agent as its storage goes (its outbox's table already dropped) has nothing to write: it answers.
    await runInDurableObject(stub, async (agent: ThreadAgent, state) => {
      state.storage.sql.exec("DROP TABLE IF EXISTS tl_outbox");
      await expect(agent.sync()).resolves.toBeUndefined();
    });
  });

  it("deleting a user cascades to their threads and messages", async () => {
    const { userId, apiKey, threadId } = await newThread();
    const client = await ChatClient.connect(threadId, apiKey);
    await client.response(client.sendChat("soon gone").requestId);
    client.close();
    expect((await fetchApp(`/api/v1/users/${userId}`, { method: "DELETE" })).status).toBe(204);
    expect(await messageRows(threadId)).toHaveLength(0);
    expect((await fetchApp("/api/v1/users/me", {}, apiKey)).status).toBe(401);
    expect((await fetchApp(`/api/v1/users/${userId}`, { method: "DELETE" })).status).toBe(404);
  });
});

describe("GET /api/v1/threads/:id/messages", () => {
  it("returns an empty page for a new thread, 404 for an unknown or malformed id, 422 for a bad limit", async () => {
    const { threadId, apiKey } = await newThread();
    expect(await (await fetchApp(`/api/v1/threads/${threadId}/messages`, {}, apiKey)).json()).toEqual({ messages: [], nextCursor: null });
    for (const id of [crypto.randomUUID(), "not-a-uuid"]) {
      const res = await fetchApp(`/api/v1/threads/${id}/messages`, {}, apiKey);
      expect(res.status).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("thread_not_found");
    }
    expect((await fetchApp(`/api/v1/threads/${threadId}/messages?limit=0`, {}, apiKey)).status).toBe(422);
    expect((await fetchApp(`/api/v1/threads/${threadId}/messages?limit=abc`, {}, apiKey)).status).toBe(422);
  });
});

describe("GET /api/v1/threads/:id/export", () => {
  it("exports the thread as JSON and as markdown", async () => {
    const { apiKey, threadId } = await newThread("Export me");
    const client = await ChatClient.connect(threadId, apiKey);
    await client.response(client.sendChat("what time is it?").requestId);
    client.close();
    const asJson = (await (await fetchApp(`/api/v1/threads/${threadId}/export`, {}, apiKey)).json()) as { thread: ThreadJson; messages: { role: string }[] };
    expect(asJson.thread.title).toBe("Export me");
    expect(asJson.messages.map((m) => m.role)).toEqual(["user", "assistant"]);
    const md = await fetchApp(`/api/v1/threads/${threadId}/export?format=markdown`, {}, apiKey);
    expect(md.headers.get("content-type")).toMatch(/^text\/markdown/);
    const text = await md.text();
    expect(text).toContain("# Export me");
    expect(text).toContain("what time is it?");
    expect(text).toContain("tool `current_time`");
    expect((await fetchApp(`/api/v1/threads/${threadId}/export?format=pdf`, {}, apiKey)).status).toBe(422);
  });
});
