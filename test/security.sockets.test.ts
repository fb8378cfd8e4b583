import { env } from "./support/env.ts";
import { describe, expect, it } from "vitest";
import { ChatClient, eventually, fetchApp, postJson, threadsForEachTest } from "./support/helpers.ts";

const newThread = threadsForEachTest();
const PER_THREAD = Number(env.MAX_SOCKETS_PER_THREAD);
const PER_USER = Number(env.MAX_SOCKETS_PER_USER);

const connectAll = (n: number, threadId: string, key: string) => Promise.all(Array.from({ length: n }, () => ChatClient.connect(threadId, key)));

describe("caps on open WebSockets", () => {
  it("per thread: one over the cap is closed with 4429 and a reason; room comes back when a socket closes", async () => {
    const { threadId, apiKey } = await newThread();
    const open = await connectAll(PER_THREAD, threadId, apiKey);
    const over = await ChatClient.open(`/agents/thread-agent/${threadId}?token=${apiKey}`, {}, false);
    expect(await over.closed).toEqual({ code: 4429, reason: expect.stringMatching(/too many open connections.*thread/) });
    open.pop()!.close();
    const again = await eventually(
      () =>
        ChatClient.open(`/agents/thread-agent/${threadId}?token=${apiKey}`, {}, false).then(async (c) => ({
          c,
          r: await Promise.race([c.closed, c.waitFor((f) => f.type === "cf_agent_identity").then(() => null)]),
        })),
      ({ r }) => r === null,
    );
    expect(again.r).toBeNull();
    for (const c of [...open, again.c]) c.close();
  });

  it("per user, across their threads: the admin's sockets do not count against the user", async () => {
    const first = await newThread();
    const made = await Promise.all(
      Array.from(
        { length: Math.ceil(PER_USER / PER_THREAD) },
        async () => ((await (await postJson("/api/v1/threads", {}, first.apiKey)).json()) as { thread: { id: string } }).thread.id,
      ),
    );
    const threads = [first.threadId, ...made];
    const open: ChatClient[] = [];
    for (let i = 0; i < PER_USER; i++) open.push(await ChatClient.connect(threads[i % threads.length]!, first.apiKey));
    const over = await ChatClient.open(`/agents/thread-agent/${threads.at(-1)}?token=${first.apiKey}`, {}, false);
    expect(await over.closed).toEqual({ code: 4429, reason: expect.stringMatching(/too many open connections.*user/) });
    const admin = await ChatClient.connect(threads.at(-1)!);
    admin.close();
    for (const c of open) c.close();
  });
});

describe("revocation closes open sockets", () => {
  it("rotating a key closes every socket opened with the old one, on every thread, with 4401; the new key connects", async () => {
    const { threadId, apiKey } = await newThread();
    const other = ((await (await postJson("/api/v1/threads", {}, apiKey)).json()) as { thread: { id: string } }).thread.id;
    const sockets = [await ChatClient.connect(threadId, apiKey), await ChatClient.connect(other, apiKey)];
    const admin = await ChatClient.connect(threadId);
    const rotated = ((await (await fetchApp("/api/v1/users/me/api-key", { method: "POST" }, apiKey)).json()) as { apiKey: string }).apiKey;
    for (const s of sockets) expect(await s.closed).toEqual({ code: 4401, reason: "api key rotated" });
    const fresh = await ChatClient.connect(threadId, rotated);
    expect((await fresh.response(fresh.sendChat("with the new key").requestId)).text).toBe("Echo: with the new key");
    expect(admin.ws.readyState).toBe(WebSocket.OPEN);
    fresh.close();
    admin.close();
  });

  it("deleting a user closes their sockets", async () => {
    const { threadId, apiKey, userId } = await newThread();
    const socket = await ChatClient.connect(threadId, apiKey);
    expect((await fetchApp(`/api/v1/users/${userId}`, { method: "DELETE" })).status).toBe(204);
    expect((await socket.closed).code).toBeGreaterThanOrEqual(4000);
    expect((await fetchApp("/api/v1/users/me", {}, apiKey)).status).toBe(401);
  });
});
