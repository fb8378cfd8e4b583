import { DefaultChatTransport, type UIMessage, type UIMessageChunk } from "ai";
import { describe, expect, it } from "vitest";
import { env } from "./support/env.ts";
import { ADMIN_TOKEN, BASE, ChatClient, eventually, fetchApp, messageRows, postJson, sendJson, threadsForEachTest } from "./support/helpers.ts";

const newThread = threadsForEachTest();

/** The AI SDK's own transport, as a useChat app would configure it, reaching the Worker in this isolate. */
const transport = (apiKey: string, body?: object) =>
  new DefaultChatTransport<UIMessage>({
    api: `${BASE}/api/v1/chat`,
    headers: { authorization: `Bearer ${apiKey}` },
    body,
    fetch: ((input: RequestInfo | URL, init?: RequestInit) => fetchApp(String(input).slice(BASE.length), init, null)) as typeof fetch,
  });

async function drain(stream: ReadableStream<UIMessageChunk>) {
  const chunks: UIMessageChunk[] = [];
  for await (const c of stream as unknown as AsyncIterable<UIMessageChunk>) chunks.push(c);
  return chunks;
}
const textOf = (chunks: UIMessageChunk[]) => chunks.map((c) => (c.type === "text-delta" ? c.delta : "")).join("");
const user = (text: string, id = `u-${crypto.randomUUID()}`): UIMessage => ({ id, role: "user", parts: [{ type: "text", text }] });
const send = (t: DefaultChatTransport<UIMessage>, chatId: string, messages: UIMessage[], trigger: "submit-message" | "regenerate-message" = "submit-message") =>
  t.sendMessages({ chatId, trigger, messageId: undefined, messages, abortSignal: undefined });
const errorOf = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: Error) => e.message,
  );
const fakeRequests = async (contains: string) =>
  (await (await fetch(`${env.OPENAI_FAKE_URL.replace(/\/v1$/, "")}/__requests?contains=${encodeURIComponent(contains)}`)).json()) as { tools: string[]; aborted?: boolean }[];

describe("useChat's DefaultChatTransport on /api/v1/chat", () => {
  it("regenerate-message answers the last user message again, replacing the reply", async () => {
    const { apiKey, threadId } = await newThread();
    const t = transport(apiKey);
    const question = user("regenerate me");
    expect(textOf(await drain(await send(t, threadId, [question])))).toBe("Echo: regenerate me");
    const [, first] = await messageRows(threadId);
    // What useChat's regenerate() sends: the transcript up to the user message, the old reply dropped.
    expect(textOf(await drain(await send(t, threadId, [question], "regenerate-message")))).toBe("Echo: regenerate me");
    const rows = await messageRows(threadId);
    expect(rows.map((r) => [r.id, r.role])).toEqual([
      [question.id, "user"],
      [expect.any(String), "assistant"],
    ]);
    expect(rows[1]!.id).not.toBe(first!.id);
    // Nothing to regenerate on an empty thread.
    const empty = await newThread();
    expect(await errorOf(send(transport(empty.apiKey), empty.threadId, [user("x")], "regenerate-message").then(drain))).toMatch(/nothing to regenerate/);
  });

  it("creates the thread on the first message when asked, owned by the caller and known to their authority", async () => {
    const { apiKey } = await newThread();
    const chatId = crypto.randomUUID();
    // Not asked: a chat id that is not a thread is a 404, as before.
    expect(await errorOf(send(transport(apiKey), chatId, [user("hi")]))).toMatch(/thread not found/);
    expect(textOf(await drain(await send(transport(apiKey, { createThread: true }), chatId, [user("first words")])))).toBe("Echo: first words");
    expect((await fetchApp(`/api/v1/threads/${chatId}`, {}, apiKey)).status).toBe(200);
    expect((await messageRows(chatId)).map((r) => r.role)).toEqual(["user", "assistant"]);
    // The authority knows the thread: it signs a ticket for it, and the thread's socket opens.
    expect((await postJson(`/api/v1/threads/${chatId}/tickets`, {}, apiKey)).status).toBe(201);
    (await ChatClient.connect(chatId, apiKey)).close();
    // Asked again for an existing thread: it is simply used.
    expect(textOf(await drain(await send(transport(apiKey, { createThread: true }), chatId, [user("again")])))).toBe("Echo: again");
  });

  it("never creates a thread for the admin, under a malformed id, or over someone else's thread", async () => {
    const mine = await newThread();
    const theirs = await newThread();
    const body = (id: string) => ({ id, createThread: true, trigger: "submit-message", messages: [user("take it")] });
    const admin = await postJson("/api/v1/chat", body(crypto.randomUUID()), ADMIN_TOKEN);
    expect([admin.status, ((await admin.json()) as { error: { code: string } }).error.code]).toEqual([403, "forbidden"]);
    const malformed = await postJson("/api/v1/chat", body("Yx3kAbc9"), mine.apiKey);
    expect(malformed.status).toBe(422);
    expect(await malformed.text()).toMatch(/must be a UUID/);
    expect((await postJson("/api/v1/chat", body(theirs.threadId), mine.apiKey)).status).toBe(404);
    expect(await messageRows(theirs.threadId)).toEqual([]);
  });

  it("refuses file parts with 422 and stores nothing", async () => {
    const { apiKey, threadId } = await newThread();
    const withFile: UIMessage = {
      id: "u-file",
      role: "user",
      parts: [
        { type: "text", text: "see attached" },
        { type: "file", mediaType: "image/png", url: "data:image/png;base64,AAAA" },
      ],
    };
    const res = await postJson("/api/v1/chat", { id: threadId, trigger: "submit-message", messages: [withFile] }, apiKey);
    expect(res.status).toBe(422);
    expect(((await res.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: "validation_failed", message: expect.stringMatching(/file parts/) });
    expect(await errorOf(send(transport(apiKey), threadId, [withFile]))).toMatch(/file parts/);
    expect(await messageRows(threadId)).toEqual([]);
  });

  it("stop(): a client gone before the reply began stops the turn, and the model request with it", async () => {
    const { apiKey, threadId } = await newThread();
    // Unique: the fake model server is shared by the projects that run this file at once.
    const text = `slow to start [late] ${crypto.randomUUID()}`;
    const stop = new AbortController();
    const stream = await transport(apiKey).sendMessages({ chatId: threadId, trigger: "submit-message", messageId: undefined, messages: [user(text)], abortSignal: stop.signal });
    stop.abort();
    await stream.cancel().catch(() => {});
    const status = await eventually(
      async () => (await (await fetchApp(`/api/v1/threads/${threadId}/status`, {}, apiKey)).json()) as { streaming: boolean },
      (s) => !s.streaming,
    );
    expect(status.streaming).toBe(false);
    // The turn's model request (it offers tools; a title request, should one come, does not) was hung up
    // on, or never sent: the reply's start goes out before the model is asked, so a client can leave first.
    const turnRequests = async () => (await fakeRequests(text)).filter((r) => r.tools.length > 0);
    const sent = await eventually(turnRequests, (r) => r.every((x) => x.aborted));
    expect(sent.length).toBeLessThanOrEqual(1);
    expect(sent.filter((r) => !r.aborted)).toEqual([]);
    // The reply never began: it is kept empty, marked stopped.
    const rows = await eventually(
      () => messageRows(threadId),
      (r) => r.length === 2,
    );
    expect(rows.map((r) => r.role)).toEqual(["user", "assistant"]);
    expect(rows[1]!.metadata).toMatchObject({ outcome: "stopped" });
    expect(JSON.stringify(rows[1]!.parts)).not.toContain("Echo");
  });

  it("DELETE /api/v1/chat/:id/stream stops the streaming turn: the partial reply is kept, marked stopped, on every client", async () => {
    const { apiKey, threadId } = await newThread();
    const watcher = await ChatClient.connect(threadId, apiKey);
    const stream = await send(transport(apiKey), threadId, [user("a long answer please [slow]")]);
    const reader = stream.getReader();
    const seen: UIMessageChunk[] = [];
    while (!seen.some((c) => c.type === "text-delta")) seen.push((await reader.read()).value!);
    const stopped = await fetchApp(`/api/v1/chat/${threadId}/stream`, { method: "DELETE" }, apiKey);
    expect(await stopped.json()).toEqual({ stopped: true });
    for (let r = await reader.read(); !r.done; r = await reader.read()) seen.push(r.value);
    const rows = await eventually(
      () => messageRows(threadId),
      (r) => (r[1]?.metadata as { outcome?: string } | null)?.outcome === "stopped",
    );
    const partial = JSON.stringify(rows[1]!.parts);
    expect(rows[1]!.metadata).toMatchObject({ outcome: "stopped" });
    expect(partial).toContain("Echo");
    expect(partial).not.toContain("a long answer please [slow]");
    await watcher.waitFor((f) => f.type === "cf_agent_chat_messages" && f.messages.at(-1)?.metadata?.outcome === "stopped");
    watcher.close();
    // Nothing streaming any more: a second stop says so.
    expect(await (await fetchApp(`/api/v1/chat/${threadId}/stream`, { method: "DELETE" }, apiKey)).json()).toEqual({ stopped: false });
  });

  it("a WebSocket cancel marks the partial reply stopped too", async () => {
    const { apiKey, threadId } = await newThread();
    const client = await ChatClient.connect(threadId, apiKey);
    const { requestId } = client.sendChat("cancel me midway [slow]");
    await client.waitFor((f) => f.id === requestId && typeof f.body === "string" && f.body.includes("text-delta"));
    client.send({ type: "cf_agent_chat_request_cancel", id: requestId });
    const done = await client.waitFor((f) => f.id === requestId && f.done);
    expect(done.outcome).toBe("aborted");
    await client.waitFor((f) => f.type === "cf_agent_chat_messages" && f.messages.at(-1)?.metadata?.outcome === "stopped");
    client.close();
  });
});

describe("a failed model turn", () => {
  it("says what failed in words a person reads, and is not replayed to clients that connect later", async () => {
    const { apiKey, threadId } = await newThread();
    const client = await ChatClient.connect(threadId, apiKey);
    const reply = await client.response(client.sendChat("please [fail]").requestId);
    expect(reply.error?.body).toBe("The model server had a problem (500). Try again in a moment.");
    client.close();
    // Nothing was written, so nothing but the question is kept.
    expect((await messageRows(threadId)).map((r) => r.role)).toEqual(["user"]);
    // A client that connects afterwards gets the thread as stored, and no error for that old turn.
    const later = await ChatClient.connect(threadId, apiKey);
    later.send({ type: "cf_agent_stream_resume_request" });
    await later.waitFor((f) => f.type === "cf_agent_stream_resume_none" || f.type === "cf_agent_stream_resuming");
    expect(later.frames.find((f) => f.type === "cf_agent_stream_resuming")).toBeUndefined();
    expect(later.frames.some((f) => f.error)).toBe(false);
    later.close();
  });

  it("marks the reply it broke off, with the error, where every client and the stored thread show it", async () => {
    const { apiKey, threadId } = await newThread();
    const client = await ChatClient.connect(threadId, apiKey);
    const reply = await client.response(client.sendChat("half a reply [break]").requestId);
    expect(reply.error?.body).toBe("The model failed while writing this reply. Try again in a moment.");
    await client.waitFor((f) => f.type === "cf_agent_chat_messages" && f.messages.at(-1)?.metadata?.outcome === "error");
    client.close();
    const rows = await eventually(
      () => messageRows(threadId),
      (r) => (r[1]?.metadata as { outcome?: string } | null)?.outcome === "error",
    );
    expect(rows[1]!.metadata).toMatchObject({ outcome: "error", error: "The model failed while writing this reply. Try again in a moment." });
    expect(JSON.stringify(rows[1]!.parts)).toContain("Echo");
  });
});

describe("CORS", () => {
  it("is off for origins not in CORS_ORIGINS, and lets a listed origin call the API and read the answer", async () => {
    const { apiKey, threadId } = await newThread();
    const preflight = (origin: string) =>
      fetchApp(
        "/api/v1/chat",
        { method: "OPTIONS", headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type" } },
        null,
      );
    const other = await preflight("https://evil.example");
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
    expect(other.status).toBe(401);
    const listed = await preflight("https://app.threadline.test");
    expect(listed.status).toBe(204);
    expect(listed.headers.get("access-control-allow-origin")).toBe("https://app.threadline.test");
    expect(listed.headers.get("access-control-allow-headers")).toContain("authorization");
    expect(listed.headers.get("access-control-allow-credentials")).toBeNull();
    const call = await fetchApp(`/api/v1/threads/${threadId}`, { headers: { origin: "https://app.threadline.test" } }, apiKey);
    expect(call.status).toBe(200);
    expect(call.headers.get("access-control-allow-origin")).toBe("https://app.threadline.test");
    expect(call.headers.get("access-control-expose-headers")).toContain("x-request-id");
    const refused = await sendJson("PATCH", `/api/v1/threads/${threadId}`, { title: "x" }, apiKey);
    expect(refused.headers.get("access-control-allow-origin")).toBeNull();
    expect(refused.headers.get("vary")).toContain("Origin");
  });
});
