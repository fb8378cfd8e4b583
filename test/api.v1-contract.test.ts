import { describe, expect, it } from "vitest";
import { z } from "zod";
import { fetchApp, postJson, removeUser, sendJson, threadsForEachTest, uniqueEmail } from "./support/helpers.ts";

/**
 * The v1 contract, pinned here and not imported from src/, so a change in the code cannot move it.
 * A response may gain fields (clients ignore what they do not know), never lose, rename or retype
 * one; a route may be added, never removed. Changing a pin means /api/v2.
 */
const iso = z.iso.datetime({ offset: true });
const User = z.object({ id: z.uuid(), email: z.string(), name: z.string().nullable(), tokenBudget: z.number().int().nullable(), createdAt: iso });
const Usage = z.object({ inputTokens: z.number().int(), outputTokens: z.number().int(), totalTokens: z.number().int(), turns: z.number().int() });
const Thread = z.object({ id: z.uuid(), userId: z.uuid(), title: z.string().nullable(), createdAt: iso, updatedAt: iso });
const Message = z.object({ id: z.string(), role: z.enum(["user", "assistant", "system"]), parts: z.array(z.looseObject({ type: z.string() })), metadata: z.unknown().optional() });
const StoredMessage = Message.extend({ createdAt: iso });
const AssistantMetadata = z.object({
  model: z.string(),
  offline: z.boolean(),
  usage: z.object({ inputTokens: z.number().int(), outputTokens: z.number().int(), totalTokens: z.number().int() }),
});
const Document = z.object({
  id: z.uuid(),
  title: z.string(),
  source: z.string().nullable(),
  metadata: z.unknown(),
  chunkCount: z.number().int(),
  global: z.boolean(),
  createdAt: iso,
});
const SearchHit = z.object({ documentId: z.uuid(), chunkId: z.number().int(), title: z.string(), text: z.string(), score: z.number() });
const ErrorBody = (code: string) => z.object({ error: z.object({ code: z.literal(code), message: z.string() }) });

const PINNED_ROUTES = [
  "POST /api/v1/users",
  "GET /api/v1/users/me",
  "GET /api/v1/users/me/usage",
  "POST /api/v1/users/me/api-key",
  "DELETE /api/v1/users/{id}",
  "POST /api/v1/threads",
  "GET /api/v1/threads",
  "GET /api/v1/threads/{id}",
  "PATCH /api/v1/threads/{id}",
  "DELETE /api/v1/threads/{id}",
  "GET /api/v1/threads/{id}/messages",
  "POST /api/v1/threads/{id}/messages",
  "GET /api/v1/threads/{id}/status",
  "GET /api/v1/threads/{id}/export",
  "POST /api/v1/chat",
  "GET /api/v1/chat/{id}/stream",
  "POST /api/v1/documents",
  "GET /api/v1/documents/{id}",
  "DELETE /api/v1/documents/{id}",
  "GET /api/v1/search",
  "GET /api/v1/admin/flags",
  "PUT /api/v1/admin/flags/{flag}",
  "DELETE /api/v1/admin/flags/{flag}",
  "GET /api/v1/admin/users/{userId}/flags",
  "PUT /api/v1/admin/users/{userId}/flags/{flag}",
  "DELETE /api/v1/admin/users/{userId}/flags/{flag}",
  "GET /api/v1/admin/threads/{threadId}/flags",
  "PUT /api/v1/admin/threads/{threadId}/flags/{flag}",
  "DELETE /api/v1/admin/threads/{threadId}/flags/{flag}",
  "GET /api/v1/admin/stats",
];

/** Asserts status and pinned shape, and returns the parsed body. */
async function expectJson<T extends z.ZodType>(res: Response | Promise<Response>, status: number, shape: T): Promise<z.infer<T>> {
  const r = await res;
  const body = await r.json();
  expect(r.status, JSON.stringify(body)).toBe(status);
  expect(r.headers.get("content-type")).toMatch(/^application\/json/);
  const parsed = shape.safeParse(body);
  if (!parsed.success) expect.fail(`${r.url}: the v1 shape changed:\n${z.prettifyError(parsed.error)}\n${JSON.stringify(body)}`);
  return parsed.data;
}

/** An AI SDK UI message stream over SSE: its chunk types, in order. */
async function expectUiStream(res: Response) {
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("text/event-stream");
  expect(res.headers.get("x-vercel-ai-ui-message-stream")).toBe("v1");
  const data = (await res.text())
    .split("\n\n")
    .filter((e) => e.startsWith("data: "))
    .map((e) => e.slice(6));
  expect(data.at(-1)).toBe("[DONE]");
  const types = data.slice(0, -1).map((d) => (JSON.parse(d) as { type: string }).type);
  expect(types[0]).toBe("start");
  expect(types).toContain("text-delta");
  expect(types.at(-1)).toBe("finish");
  return types;
}

const newThread = threadsForEachTest();
const json = (method: string, body?: unknown) => ({
  method,
  headers: { "content-type": "application/json", accept: "application/json" },
  body: body === undefined ? undefined : JSON.stringify(body),
});

describe("API v1 contract", () => {
  it("lists every pinned route in the OpenAPI document", async () => {
    const doc = await expectJson(
      fetchApp("/api/v1/openapi.json", {}, null),
      200,
      z.object({ openapi: z.string(), paths: z.record(z.string(), z.record(z.string(), z.unknown())) }),
    );
    const routes = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    expect(
      PINNED_ROUTES.filter((r) => !routes.includes(r)),
      "v1 routes removed from the OpenAPI document",
    ).toEqual([]);
  });

  it("health", async () => {
    await expectJson(
      fetchApp("/health", {}, null),
      200,
      z.object({
        status: z.literal("ok"),
        database: z.object({ status: z.literal("ok"), latencyMs: z.number() }),
        outbox: z.object({ threads: z.number().int(), messages: z.number().int(), oldestAt: z.number().nullable() }).nullable(),
      }),
    );
  });

  it("users: create, me, usage, key rotation, delete", async () => {
    const email = uniqueEmail();
    const created = await expectJson(postJson("/api/v1/users", { email, name: "Pinned", tokenBudget: 100_000 }), 201, z.object({ user: User, apiKey: z.string() }));
    try {
      expect(created.user).toMatchObject({ email, name: "Pinned", tokenBudget: 100_000 });
      await expectJson(postJson("/api/v1/users", { email }), 409, ErrorBody("conflict"));
      const me = await expectJson(fetchApp("/api/v1/users/me", {}, created.apiKey), 200, z.object({ user: User }));
      expect(me.user.id).toBe(created.user.id);
      const usage = await expectJson(
        fetchApp("/api/v1/users/me/usage", {}, created.apiKey),
        200,
        z.object({ usage: Usage, tokenBudget: z.number().int().nullable(), remaining: z.number().int().nullable() }),
      );
      expect(usage).toMatchObject({ tokenBudget: 100_000, remaining: 100_000 });
      const rotated = await expectJson(fetchApp("/api/v1/users/me/api-key", { method: "POST" }, created.apiKey), 200, z.object({ apiKey: z.string() }));
      await expectJson(fetchApp("/api/v1/users/me", {}, created.apiKey), 401, ErrorBody("unauthorized"));
      await expectJson(postJson("/api/v1/users", { email: uniqueEmail() }, rotated.apiKey), 403, ErrorBody("forbidden"));
    } finally {
      const res = await fetchApp(`/api/v1/users/${created.user.id}`, { method: "DELETE" });
      expect(res.status).toBe(204);
      expect(await res.text()).toBe("");
      await removeUser(created.user.id);
    }
  });

  it("threads: create, list, get, rename, delete", async () => {
    const { apiKey, threadId } = await newThread("first");
    const created = await expectJson(postJson("/api/v1/threads", { title: "second" }, apiKey), 201, z.object({ thread: Thread }));
    const page = await expectJson(fetchApp("/api/v1/threads?limit=1", {}, apiKey), 200, z.object({ items: z.array(Thread), nextCursor: z.string().nullable() }));
    expect(page.items.map((t) => t.id)).toEqual([created.thread.id]);
    expect(page.nextCursor).toEqual(expect.any(String));
    await expectJson(fetchApp(`/api/v1/threads/${threadId}`, {}, apiKey), 200, z.object({ thread: Thread, usage: Usage }));
    const renamed = await expectJson(fetchApp(`/api/v1/threads/${threadId}`, json("PATCH", { title: "renamed" }), apiKey), 200, z.object({ thread: Thread }));
    expect(renamed.thread.title).toBe("renamed");
    const deleted = await fetchApp(`/api/v1/threads/${created.thread.id}`, { method: "DELETE" }, apiKey);
    expect(deleted.status).toBe(204);
    await expectJson(fetchApp(`/api/v1/threads/${created.thread.id}`, {}, apiKey), 404, ErrorBody("thread_not_found"));
  });

  it("messages: a JSON-mode turn, an SSE turn, the stored page, status and export", async () => {
    const { apiKey, threadId } = await newThread("contract");
    const turn = await expectJson(fetchApp(`/api/v1/threads/${threadId}/messages`, json("POST", { text: "pin me" }), apiKey), 200, z.object({ messages: z.array(Message) }));
    expect(turn.messages.map((m) => m.role)).toEqual(["user", "assistant"]);
    const meta = AssistantMetadata.safeParse(turn.messages[1]!.metadata);
    if (!meta.success) expect.fail(`assistant metadata changed:\n${z.prettifyError(meta.error)}`);

    await expectUiStream(await postJson(`/api/v1/threads/${threadId}/messages`, { text: "and stream" }, apiKey));

    const stored = await expectJson(
      fetchApp(`/api/v1/threads/${threadId}/messages?limit=3`, {}, apiKey),
      200,
      z.object({ messages: z.array(StoredMessage), nextCursor: z.string().nullable() }),
    );
    expect(stored.messages).toHaveLength(3);
    expect(stored.nextCursor).toEqual(expect.any(String));
    await expectJson(
      fetchApp(`/api/v1/threads/${threadId}/status`, {}, apiKey),
      200,
      z.object({ outbox: z.object({ backlog: z.number().int(), oldestAt: z.number().nullable() }), streaming: z.boolean() }),
    );
    const exported = await expectJson(fetchApp(`/api/v1/threads/${threadId}/export?format=json`, {}, apiKey), 200, z.object({ thread: Thread, messages: z.array(StoredMessage) }));
    expect(exported.messages).toHaveLength(4);
    const markdown = await fetchApp(`/api/v1/threads/${threadId}/export?format=markdown`, {}, apiKey);
    expect(markdown.status).toBe(200);
    expect(markdown.headers.get("content-type")).toMatch(/^text\/markdown/);
    expect(await markdown.text()).toContain("pin me");
  });

  it("chat: the AI SDK transport's turn and its resume", async () => {
    const { apiKey, threadId } = await newThread();
    const messages = [{ id: "u-contract", role: "user", parts: [{ type: "text", text: "via useChat" }] }];
    await expectUiStream(await postJson("/api/v1/chat", { id: threadId, messages, trigger: "submit-message" }, apiKey));
    const resume = await fetchApp(`/api/v1/chat/${threadId}/stream`, {}, apiKey);
    expect(resume.status).toBe(204);
  });

  it("documents and search", async () => {
    const { apiKey } = await newThread();
    const word = `zq${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
    const stored = await expectJson(
      postJson("/api/v1/documents", { title: "Pinned doc", text: `The ${word} contract keeps its shape.`, source: "test", metadata: { k: 1 } }, apiKey),
      201,
      z.object({ documents: z.array(z.object({ id: z.uuid(), title: z.string(), chunkCount: z.number().int() })) }),
    );
    const id = stored.documents[0]!.id;
    const doc = await expectJson(fetchApp(`/api/v1/documents/${id}`, {}, apiKey), 200, z.object({ document: Document }));
    expect(doc.document).toMatchObject({ source: "test", metadata: { k: 1 }, global: false });
    for (const mode of ["hybrid", "lexical", "vector"]) {
      const found = await expectJson(
        fetchApp(`/api/v1/search?${new URLSearchParams({ q: word, mode })}`, {}, apiKey),
        200,
        z.object({ results: z.array(SearchHit), cached: z.boolean(), mode: z.enum(["hybrid", "lexical", "vector"]) }),
      );
      expect(found.mode).toBe(mode);
      expect(found.results.map((h) => h.documentId)).toContain(id);
    }
    expect((await fetchApp(`/api/v1/documents/${id}`, { method: "DELETE" }, apiKey)).status).toBe(204);
    await expectJson(fetchApp(`/api/v1/documents/${id}`, {}, apiKey), 404, ErrorBody("not_found"));
  });

  it("admin: flags and stats", async () => {
    const { userId, threadId } = await newThread();
    const FlagValue = z.union([z.boolean(), z.number(), z.string()]);
    const flags = await expectJson(
      fetchApp("/api/v1/admin/flags"),
      200,
      z.object({ flags: z.array(z.object({ name: z.string(), description: z.string(), default: FlagValue, global: FlagValue.nullable() })) }),
    );
    expect(flags.flags.map((f) => f.name)).toEqual(expect.arrayContaining(["hybrid_search", "chat_model", "offline_model_allowed", "turn_rate_limit"]));
    const FlagSet = z.object({ flag: z.string(), value: FlagValue, scope: z.enum(["global", "user", "thread"]) });
    await expectJson(sendJson("PUT", `/api/v1/admin/users/${userId}/flags/chat_model`, { value: "pinned-model" }), 200, FlagSet);
    await expectJson(sendJson("PUT", `/api/v1/admin/threads/${threadId}/flags/hybrid_search`, { value: false }), 200, FlagSet);
    const Scope = z.object({
      overrides: z.record(z.string(), z.unknown()),
      resolved: z.record(z.string(), z.object({ value: FlagValue, source: z.enum(["default", "global", "user", "thread"]) })),
    });
    const user = await expectJson(fetchApp(`/api/v1/admin/users/${userId}/flags`), 200, Scope);
    expect(user.resolved.chat_model).toEqual({ value: "pinned-model", source: "user" });
    const thread = await expectJson(fetchApp(`/api/v1/admin/threads/${threadId}/flags`), 200, Scope);
    expect(thread.resolved.hybrid_search).toEqual({ value: false, source: "thread" });
    expect((await fetchApp(`/api/v1/admin/threads/${threadId}/flags/hybrid_search`, { method: "DELETE" })).status).toBe(204);
    await expectJson(fetchApp("/api/v1/admin/flags/no_such_flag", { method: "DELETE" }), 404, ErrorBody("flag_not_found"));
    const Count = z.number().int();
    await expectJson(
      fetchApp("/api/v1/admin/stats?hours=1"),
      200,
      z.object({
        window: z.object({ hours: Count, since: z.iso.datetime() }),
        users: z.object({ total: Count, created: Count, active: Count }),
        threads: z.object({ total: Count, created: Count, active: Count }),
        messages: z.object({ user: Count, assistant: Count }),
        tokens: z.object({ input: z.number(), output: z.number() }),
        models: z.array(z.object({ model: z.string(), turns: Count, inputTokens: z.number(), outputTokens: z.number() })),
        tools: z.array(z.object({ name: z.string(), calls: Count, errors: Count })),
        search: z.object({ calls: Count, cached: Count, cacheHitRatio: z.number().nullable() }),
        documents: z.object({ total: Count, chunks: Count }),
        outbox: z.object({ threads: Count, messages: Count, oldestAt: z.number().nullable() }).nullable(),
      }),
    );
  });

  it("errors: one body shape, and the codes clients branch on", async () => {
    const { apiKey, threadId } = await newThread();
    await expectJson(fetchApp("/api/v1/threads", {}, null), 401, ErrorBody("unauthorized"));
    await expectJson(fetchApp("/api/v1/threads", {}, "tl_not-a-key"), 401, ErrorBody("unauthorized"));
    await expectJson(fetchApp(`/api/v1/threads/${crypto.randomUUID()}`, {}, apiKey), 404, ErrorBody("thread_not_found"));
    await expectJson(postJson("/api/v1/threads", { userId: crypto.randomUUID() }), 404, ErrorBody("user_not_found"));
    await expectJson(postJson(`/api/v1/threads/${threadId}/messages`, { txt: "typo" }, apiKey), 422, ErrorBody("validation_failed"));
    await expectJson(
      fetchApp(`/api/v1/threads/${threadId}/messages`, { method: "POST", headers: { "content-type": "application/json" }, body: "{nope" }, apiKey),
      400,
      ErrorBody("invalid_json"),
    );
    await expectJson(sendJson("PATCH", `/api/v1/threads/${threadId}`, { title: "x".repeat(70_000) }, apiKey), 413, ErrorBody("payload_too_large"));
    await expectJson(fetchApp("/api/v1/no-such-route", {}, apiKey), 404, ErrorBody("not_found"));
  });
});
