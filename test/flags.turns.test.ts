import { env } from "./support/env.ts";
import { describe, expect, it } from "vitest";
import type { RecordedRequest } from "./support/fake-openai.ts";
import { ChatClient, httpTurn, fetchApp, messageRows, postJson, sendJson, threadsForEachTest } from "./support/helpers.ts";

const newThread = threadsForEachTest();
const fakeUrl = env.OPENAI_FAKE_URL.replace(/\/v1$/, "");

const setFlag = async (path: string, value: unknown) => expect((await sendJson("PUT", `/api/v1/admin${path}`, { value })).status).toBe(200);
const clearFlag = async (path: string) => expect((await fetchApp(`/api/v1/admin${path}`, { method: "DELETE" })).status).toBe(204);

const modelRequests = async (tag: string) => (await (await fetch(`${fakeUrl}/__requests?contains=${tag}`)).json()) as RecordedRequest[];

describe("feature flags in turns", () => {
  it("a user's turn_rate_limit override decides when their turns get 429 / an error frame, and clearing it restores the default", async () => {
    const { userId, apiKey, threadId } = await newThread();
    const other = ((await (await postJson("/api/v1/threads", {}, apiKey)).json()) as { thread: { id: string } }).thread.id;
    await setFlag(`/users/${userId}/flags/turn_rate_limit`, 2);
    expect((await httpTurn(threadId, "one", apiKey)).status).toBe(200);
    expect((await httpTurn(other, "two", apiKey)).status).toBe(200);
    const limited = await httpTurn(threadId, "three", apiKey);
    expect(limited.status).toBe(429);
    expect(await limited.json()).toMatchObject({ error: { code: "rate_limited", retryAfter: expect.any(Number) } });
    const client = await ChatClient.connect(other, apiKey);
    const refused = await client.response(client.sendChat("over ws").requestId);
    expect(refused.error).toMatchObject({ code: "rate_limited", retryAfter: expect.any(Number) });

    // No deploy: clear the override and, once the cache has turned over, the configured 8 applies again.
    await clearFlag(`/users/${userId}/flags/turn_rate_limit`);
    const reply = await client.response(client.sendChat("allowed again").requestId);
    expect(reply.error).toBeUndefined();
    expect(reply.text).toBe("Echo: allowed again");
    client.close();
  });

  it("hybrid_search off on one thread: its model is not offered the tool, while the user's other thread still is; clearing it brings it back", async () => {
    const { apiKey, threadId } = await newThread();
    const other = ((await (await postJson("/api/v1/threads", {}, apiKey)).json()) as { thread: { id: string } }).thread.id;
    await setFlag(`/threads/${threadId}/flags/hybrid_search`, false);
    const tag = crypto.randomUUID();

    expect((await httpTurn(threadId, `search off ${tag}`, apiKey)).status).toBe(200);
    expect((await httpTurn(other, `search on ${tag}`, apiKey)).status).toBe(200);
    const [off] = await modelRequests(`search off ${tag}`);
    expect(off!.tools).not.toContain("hybrid_search");
    expect(off!.tools).toContain("current_time");
    const on = await modelRequests(`search on ${tag}`);
    expect(on[0]!.tools).toEqual(expect.arrayContaining(["current_time", "hybrid_search"]));
    // The fake model calls the search tool when it is offered: only the other thread's turn did.
    const parts = async (id: string) => JSON.stringify((await messageRows(id)).map((r) => r.parts));
    expect(await parts(threadId)).not.toContain("tool-hybrid_search");
    expect(await parts(other)).toContain("tool-hybrid_search");

    await clearFlag(`/threads/${threadId}/flags/hybrid_search`);
    expect((await httpTurn(threadId, `search again ${tag}`, apiKey)).status).toBe(200);
    expect((await modelRequests(`search again ${tag}`))[0]!.tools.sort()).toEqual(["current_time", "delete_document", "hybrid_search", "save_note"]);
  });

  it("chat_model: the thread's override is the model the server is asked for and the one the assistant message records", async () => {
    const { userId, apiKey, threadId } = await newThread();
    await setFlag(`/users/${userId}/flags/chat_model`, "user-model");
    await setFlag(`/threads/${threadId}/flags/chat_model`, "thread-model-1.5");
    const tag = crypto.randomUUID();
    const client = await ChatClient.connect(threadId, apiKey);
    const reply = await client.response(client.sendChat(`which model ${tag}`).requestId);
    expect(reply.error).toBeUndefined();
    expect(reply.chunks.find((c) => c.type === "start")).toMatchObject({ messageMetadata: { model: "thread-model-1.5", offline: false } });
    expect((await modelRequests(tag)).map((r) => r.model)).toEqual(["thread-model-1.5"]);
    const [, assistant] = await messageRows(threadId);
    expect(assistant).toMatchObject({ model: "thread-model-1.5", metadata: { model: "thread-model-1.5" } });

    // The thread's override gone, the user's applies; both gone, the configured CHAT_MODEL.
    await clearFlag(`/threads/${threadId}/flags/chat_model`);
    await client.response(client.sendChat(`next model ${tag}`).requestId);
    expect((await modelRequests(`next model ${tag}`)).map((r) => r.model)).toEqual(["user-model"]);
    await clearFlag(`/users/${userId}/flags/chat_model`);
    await client.response(client.sendChat(`last model ${tag}`).requestId);
    expect((await modelRequests(`last model ${tag}`)).map((r) => r.model)).toEqual(["fake-model"]);
    expect((await messageRows(threadId)).filter((r) => r.role === "assistant").map((r) => r.model)).toEqual(["thread-model-1.5", "user-model", "fake-model"]);
    client.close();
  });

  it("search_rate_limit: a thread's override caps its hybrid_search calls", async () => {
    const { apiKey, threadId } = await newThread();
    await setFlag(`/threads/${threadId}/flags/search_rate_limit`, 1);
    expect((await httpTurn(threadId, "search first", apiKey)).status).toBe(200);
    expect((await httpTurn(threadId, "search second", apiKey)).status).toBe(200);
    const outputs = (await messageRows(threadId))
      .flatMap((r) => r.parts as { type: string; output?: { status: string; message?: string } }[])
      .filter((p) => p.type === "tool-hybrid_search")
      .map((p) => p.output);
    expect(outputs).toEqual([expect.objectContaining({ status: "ok" }), expect.objectContaining({ status: "rate_limited", message: expect.stringContaining("(1 per") })]);
  });

  it("offline_model_allowed off changes nothing while a real model is configured", async () => {
    const { userId, apiKey, threadId } = await newThread();
    await setFlag(`/users/${userId}/flags/offline_model_allowed`, false);
    const res = await httpTurn(threadId, "real model", apiKey);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { messages: { metadata: { model: string } }[] }).messages[1]!.metadata.model).toBe("fake-model");
  });
});
