import { describe, expect, it } from "vitest";
import { threadsForEachTest, fetchApp, postJson } from "./support/helpers";

const newThread = threadsForEachTest();

describe("POST /api/v1/threads", () => {
  it("creates a thread for an existing user", async () => {
    const { userId } = await newThread();
    const res = await postJson("/api/v1/threads", { userId, title: " Plans " });
    expect(res.status).toBe(201);
    const { thread } = (await res.json()) as { thread: Record<string, string> };
    expect(thread).toEqual({ id: expect.any(String), userId, title: "Plans", createdAt: expect.any(String), updatedAt: expect.any(String) });
  });

  it("answers 404 user_not_found for a user that does not exist, and writes nothing", async () => {
    const res = await postJson("/api/v1/threads", { userId: crypto.randomUUID() });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { code: "user_not_found", message: expect.any(String) } });
  });

  it("rejects a malformed user id and an overlong title with 422", async () => {
    expect((await postJson("/api/v1/threads", { userId: "42" })).status).toBe(422);
    expect((await postJson("/api/v1/threads", { userId: crypto.randomUUID(), title: "t".repeat(201) })).status).toBe(422);
  });
});

describe("GET /api/v1/threads/:id/messages", () => {
  it("returns an empty page for a new thread", async () => {
    const { threadId } = await newThread();
    const res = await fetchApp(`/api/v1/threads/${threadId}/messages`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ messages: [], nextCursor: null });
  });

  it("answers 404 for an unknown or malformed thread id and 422 for a bad limit", async () => {
    for (const id of [crypto.randomUUID(), "not-a-uuid"]) {
      const res = await fetchApp(`/api/v1/threads/${id}/messages`);
      expect(res.status).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("thread_not_found");
    }
    const { threadId } = await newThread();
    expect((await fetchApp(`/api/v1/threads/${threadId}/messages?limit=0`)).status).toBe(422);
    expect((await fetchApp(`/api/v1/threads/${threadId}/messages?limit=abc`)).status).toBe(422);
  });
});
