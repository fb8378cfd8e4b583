import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterEach, describe, expect, it } from "vitest";
import { env } from "./support/env.ts";
import { BASE, fetchApp, sendJson, threadsForEachTest } from "./support/helpers.ts";
import { documentsForEachTest, uniqueWord } from "./support/search.ts";

const newThread = threadsForEachTest();
const ingest = documentsForEachTest();
const clients: Client[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

/** The official MCP client (the SDK's streamable HTTP transport) against /mcp, with `token` as its bearer key; requests go to the Worker in this isolate. */
async function connect(token: string) {
  const transport = new StreamableHTTPClientTransport(new URL(`${BASE}/mcp`), { fetch: (url, init) => fetchApp(new URL(url).pathname, init, token) });
  const client = new Client({ name: "threadline-test", version: "1.0.0" });
  await client.connect(transport);
  clients.push(client);
  return client;
}

type Result = { isError?: boolean; content: { type: string; text: string }[] };
/** A tool's JSON answer, or its error (`{error:{code, message}}`, or the SDK's own text for bad arguments). */
async function call(client: Client, name: string, args: Record<string, unknown>) {
  const r = (await client.callTool({ name, arguments: args })) as Result;
  const text = r.content.map((c) => c.text).join("");
  return {
    isError: r.isError === true,
    text,
    json: (() => {
      try {
        return JSON.parse(text);
      } catch {
        return undefined;
      }
    })(),
  };
}

const setUserFlag = async (userId: string, flag: string, value: unknown) =>
  expect((await sendJson("PUT", `/api/v1/admin/users/${userId}/flags/${flag}`, { value })).status).toBe(200);

describe("Threadline as an MCP server at /mcp", () => {
  it("lists its tools, and each works for the key's user: search, list, read, send", async () => {
    const { apiKey, threadId } = await newThread("MCP thread");
    const w = uniqueWord();
    await ingest([{ title: "Kettle manual", text: `Descale the ${w} kettle monthly with citric acid.` }], apiKey);
    const client = await connect(apiKey);
    expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual(["list_threads", "read_thread", "search_documents", "send_message"]);

    const found = await call(client, "search_documents", { query: `${w} kettle`, limit: 3 });
    expect(found.isError).toBe(false);
    expect(found.json).toMatchObject({ mode: "hybrid", results: [{ title: "Kettle manual", text: expect.stringContaining(w) }] });

    const listed = await call(client, "list_threads", {});
    expect(listed.json).toEqual({ threads: [expect.objectContaining({ id: threadId, title: "MCP thread" })], nextCursor: null });

    const sent = await call(client, "send_message", { threadId, text: "hello over MCP" });
    expect(sent.json).toMatchObject({ threadId, userMessageId: expect.any(String), reply: { text: "Echo: hello over MCP", metadata: { model: "fake-model" } } });

    const read = await call(client, "read_thread", { threadId });
    expect(read.json).toMatchObject({
      thread: { id: threadId },
      nextCursor: null,
      messages: [
        { role: "user", text: "hello over MCP", id: sent.json.userMessageId },
        { role: "assistant", text: "Echo: hello over MCP", id: sent.json.reply.id },
      ],
    });
    // The same turn the API sees.
    const api = (await (await fetchApp(`/api/v1/threads/${threadId}/messages`, {}, apiKey)).json()) as { messages: { id: string }[] };
    expect(api.messages.map((m) => m.id)).toEqual([sent.json.userMessageId, sent.json.reply.id]);
  });

  it("refuses a missing or bad key and the admin token, before any tool", async () => {
    const { apiKey } = await newThread();
    const initialize = (token: string | null) =>
      fetchApp(
        "/mcp",
        {
          method: "POST",
          headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
          body: JSON.stringify({
            jsonrpc: "2.0",
            id: 1,
            method: "initialize",
            params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "1" } },
          }),
        },
        token,
      );
    for (const [token, status, code] of [
      [null, 401, "unauthorized"],
      [`${apiKey}x`, 401, "unauthorized"],
      ["tl_not-a-key", 401, "unauthorized"],
      [env.ADMIN_TOKEN, 403, "forbidden"],
    ] as const) {
      const res = await initialize(token);
      expect([token, res.status]).toEqual([token, status]);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(code);
    }
    await expect(connect(`${apiKey}x`)).rejects.toThrow();
    expect((await initialize(apiKey)).status).toBe(200);
  });

  it("another user's thread is not found, to read or to send to", async () => {
    const [alice, bob] = await Promise.all([newThread(), newThread()]);
    const client = await connect(alice.apiKey);
    for (const [tool, args] of [
      ["read_thread", { threadId: bob.threadId }],
      ["send_message", { threadId: bob.threadId, text: "sneaky" }],
    ] as const) {
      const r = await call(client, tool, args);
      expect(r).toMatchObject({ isError: true, json: { error: { code: "thread_not_found" } } });
    }
    expect((await call(client, "list_threads", {})).json.threads.map((t: { id: string }) => t.id)).toEqual([alice.threadId]);
    const bobs = (await (await fetchApp(`/api/v1/threads/${bob.threadId}/messages`, {}, bob.apiKey)).json()) as { messages: unknown[] };
    expect(bobs.messages).toEqual([]);
  });

  it("send_message is a turn like any other: the user's turn rate limit and token budget apply", async () => {
    const limited = await newThread();
    await setUserFlag(limited.userId, "turn_rate_limit", 1);
    const client = await connect(limited.apiKey);
    expect((await call(client, "send_message", { threadId: limited.threadId, text: "first" })).isError).toBe(false);
    expect(await call(client, "send_message", { threadId: limited.threadId, text: "second" })).toMatchObject({
      isError: true,
      json: { error: { code: "rate_limited", retryAfter: expect.any(Number) } },
    });

    // A budget with room admits a turn, which spends it (see Spend in the README); the next is refused.
    const broke = await newThread(undefined, { tokenBudget: 5 });
    const poor = await connect(broke.apiKey);
    expect((await call(poor, "send_message", { threadId: broke.threadId, text: "spend it" })).isError).toBe(false);
    expect(await call(poor, "send_message", { threadId: broke.threadId, text: "too dear" })).toMatchObject({
      isError: true,
      json: { error: { code: "token_budget_exhausted", budget: "lifetime" } },
    });
  });

  it("search_documents counts against the user's search rate limit (search_api_rate_limit)", async () => {
    const { apiKey, userId } = await newThread();
    await setUserFlag(userId, "search_api_rate_limit", 1);
    const client = await connect(apiKey);
    expect((await call(client, "search_documents", { query: "anything" })).isError).toBe(false);
    expect(await call(client, "search_documents", { query: "anything again" })).toMatchObject({ isError: true, json: { error: { code: "rate_limited" } } });
  });

  it("validates every input", async () => {
    const { apiKey, threadId } = await newThread();
    const client = await connect(apiKey);
    for (const [tool, args] of [
      ["send_message", { threadId, text: "" }],
      ["send_message", { threadId: "not-a-uuid", text: "x" }],
      ["send_message", { threadId, text: "x", extra: true }],
      ["read_thread", { threadId, limit: 0 }],
      ["list_threads", { limit: 1000 }],
      ["list_threads", { cursor: "garbage" }],
      ["search_documents", { query: " " }],
      ["search_documents", { query: "x", mode: "psychic" }],
      ["search_documents", { query: "nul \u0000 here" }],
      ["send_message", { threadId, text: "nul \u0000 here" }],
      ["send_message", { threadId, text: "lone \ud800 surrogate" }],
    ] as const) {
      const r = await call(client, tool, args);
      expect([tool, args, r.isError]).toEqual([tool, args, true]);
    }
    expect((await call(client, "list_threads", { cursor: "garbage" })).json).toMatchObject({ error: { code: "validation_failed" } });
    // Nothing reached the thread.
    expect(((await (await fetchApp(`/api/v1/threads/${threadId}/messages`, {}, apiKey)).json()) as { messages: unknown[] }).messages).toEqual([]);
    const big = await fetchApp(
      "/mcp",
      { method: "POST", headers: { "content-type": "application/json", accept: "application/json, text/event-stream" }, body: JSON.stringify({ pad: "x".repeat(70 * 1024) }) },
      apiKey,
    );
    expect(big.status).toBe(413);
  });

  it("speaks only POST: a GET for a server stream is refused", async () => {
    const { apiKey } = await newThread();
    const res = await fetchApp("/mcp", { headers: { accept: "text/event-stream" } }, apiKey);
    expect(res.status).toBe(405);
  });
});
