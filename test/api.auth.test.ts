import { describe, expect, it } from "vitest";
import { requireAdmin } from "../src/auth/access.ts";
import { DEV_ADMIN_TOKEN, getConfig } from "../src/config.ts";
import type { AppError } from "../src/errors.ts";
import { ChatClient, fetchApp, postJson, threadsForEachTest } from "./support/helpers.ts";

const newThread = threadsForEachTest();
const code = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;

describe("authentication", () => {
  it("refuses a missing or unknown token with 401", async () => {
    const none = await fetchApp("/api/v1/users/me", {}, null);
    expect(none.status).toBe(401);
    expect(await code(none)).toBe("unauthorized");
    expect((await fetchApp("/api/v1/users/me", {}, "tl_not-a-key")).status).toBe(401);
    expect((await fetchApp("/api/v1/users/me", { headers: { authorization: "Basic abc" } }, null)).status).toBe(401);
  });

  it("gives a user their key once, and the key identifies them", async () => {
    const { userId, apiKey } = await newThread();
    const me = await fetchApp("/api/v1/users/me", {}, apiKey);
    expect(me.status).toBe(200);
    expect(((await me.json()) as { user: { id: string } }).user.id).toBe(userId);
  });

  it("rotates a key: the old one stops working at once", async () => {
    const { apiKey } = await newThread();
    const res = await fetchApp("/api/v1/users/me/api-key", { method: "POST" }, apiKey);
    const { apiKey: rotated } = (await res.json()) as { apiKey: string };
    expect(rotated).not.toBe(apiKey);
    expect((await fetchApp("/api/v1/users/me", {}, apiKey)).status).toBe(401);
    expect((await fetchApp("/api/v1/users/me", {}, rotated)).status).toBe(200);
  });

  it("keeps admin routes to the admin", async () => {
    const { userId, apiKey } = await newThread();
    const create = await postJson("/api/v1/users", { email: "x@example.com" }, apiKey);
    expect(create.status).toBe(403);
    expect(await code(create)).toBe("forbidden");
    expect((await fetchApp(`/api/v1/users/${userId}`, { method: "DELETE" }, apiKey)).status).toBe(403);
    expect((await fetchApp("/api/v1/users/me")).status).toBe(403); // the admin is not a user
    expect((await postJson("/api/v1/threads", { userId }, apiKey)).status).toBe(403);
  });

  it("has a development admin token only in development, and refuses admin routes without one elsewhere", () => {
    expect(getConfig({ ENVIRONMENT: "development" } as unknown as Env).adminToken).toBe(DEV_ADMIN_TOKEN);
    const production = { ENVIRONMENT: "production" } as unknown as Env;
    expect(getConfig(production).adminToken).toBeUndefined();
    const err = (() => {
      try {
        requireAdmin(production, { kind: "user", user: {} as never, keyHash: "" });
      } catch (e) {
        return e as AppError;
      }
    })();
    expect(err).toMatchObject({ code: "admin_disabled", status: 403 });
  });
});

describe("access to someone else's thread", () => {
  it("is the same 404 as a thread that does not exist, on every thread route", async () => {
    const mine = await newThread();
    const theirs = await newThread();
    const as = mine.apiKey;
    const id = theirs.threadId;
    const responses = await Promise.all([
      fetchApp(`/api/v1/threads/${id}`, {}, as),
      fetchApp(`/api/v1/threads/${id}/messages`, {}, as),
      fetchApp(`/api/v1/threads/${id}/export`, {}, as),
      fetchApp(`/api/v1/threads/${id}`, { method: "PATCH", headers: { "content-type": "application/json" }, body: JSON.stringify({ title: "mine now" }) }, as),
      fetchApp(`/api/v1/threads/${id}`, { method: "DELETE" }, as),
      postJson(`/api/v1/threads/${id}/messages`, { text: "hi" }, as),
      postJson("/api/v1/chat", { id, messages: [{ id: "m1", role: "user", parts: [{ type: "text", text: "hi" }] }], trigger: "submit-message" }, as),
      fetchApp(`/api/v1/chat/${id}/stream`, {}, as),
      fetchApp(`/agents/thread-agent/${id}/get-messages`, {}, as),
    ]);
    for (const res of responses) {
      expect(res.status).toBe(404);
      expect(await code(res)).toBe("thread_not_found");
    }
    // Nothing happened to the other user's thread.
    expect((await fetchApp(`/api/v1/threads/${id}`, {}, theirs.apiKey)).status).toBe(200);
  });

  it("refuses a WebSocket without a token, with a bad one, or to another user's thread", async () => {
    const mine = await newThread();
    const theirs = await newThread();
    const upgrade = (query: string) => fetchApp(`/agents/thread-agent/${theirs.threadId}${query}`, { headers: { Upgrade: "websocket" } }, null);
    expect((await upgrade("")).status).toBe(401);
    expect((await upgrade("?token=tl_wrong")).status).toBe(401);
    const other = await upgrade(`?token=${mine.apiKey}`);
    expect(other.status).toBe(404);
    expect(other.webSocket).toBeNull();
    const own = await ChatClient.connect(theirs.threadId, theirs.apiKey);
    own.close();
  });
});
