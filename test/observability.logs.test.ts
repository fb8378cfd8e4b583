import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { recentMetrics, type TurnPoint } from "../src/observability/metrics.ts";
import { ChatClient, eventually, fetchApp, httpTurn, sendJson, threadsForEachTest } from "./support/helpers.ts";

const newThread = threadsForEachTest();

/** Every JSON line the Worker and its agents logged during the test (one isolate: agents log here too). */
let lines: Record<string, any>[] = [];
let raw: string[] = [];
beforeEach(() => {
  lines = [];
  raw = [];
  const capture = (...args: unknown[]) => {
    const text = args.map(String).join(" ");
    raw.push(text);
    try {
      lines.push(JSON.parse(text));
    } catch {
      /* not one of ours */
    }
  };
  vi.spyOn(console, "log").mockImplementation(capture);
  vi.spyOn(console, "warn").mockImplementation(capture);
  vi.spyOn(console, "error").mockImplementation(capture);
});
afterEach(() => vi.restoreAllMocks());

/** Polls a lookup in what was logged; fails with the whole log when it never matches. */
async function logged<T>(find: () => T | undefined, what: string): Promise<T> {
  const hit = await eventually(
    async () => find(),
    (v) => v !== undefined,
    5_000,
    50,
  );
  if (hit === undefined) throw new Error(`no ${what}; logged: ${raw.join("\n")}`);
  return hit;
}

const turnLine = (requestId: string) => logged(() => lines.find((l) => l.event === "turn" && l.requestId === requestId), `turn line for ${requestId}`);
const turnPoint = (threadId: string, n = 1) =>
  logged(() => {
    const points = recentMetrics().filter((p): p is TurnPoint => p.kind === "turn" && p.threadId === threadId);
    return points.length >= n ? points : undefined;
  }, `turn metric for ${threadId}`);

describe("request logs", () => {
  it("writes one line per request with its id, route, status, duration and caller, and no secrets", async () => {
    const { threadId, apiKey, userId } = await newThread();
    const res = await fetchApp(`/api/v1/threads/${threadId}`, {}, apiKey);
    expect(res.status).toBe(200);
    const requestId = res.headers.get("x-request-id")!;
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    const line = await logged(() => lines.find((l) => l.event === "request" && l.requestId === requestId), "request line");
    expect(line).toMatchObject({ level: "info", method: "GET", route: "/api/v1/threads/:id", status: 200, userId, threadId, durationMs: expect.any(Number) });
    expect(lines.filter((l) => l.event === "request" && l.requestId === requestId)).toHaveLength(1);
    expect(raw.join("\n")).not.toContain(apiKey);
  });

  it("echoes a client's X-Request-Id, replaces an unusable one, and logs refusals with their status", async () => {
    const mine = `req-${crypto.randomUUID()}`;
    const ok = await fetchApp("/api/v1/threads", { headers: { "x-request-id": mine } }, "tl_not-a-real-key");
    expect(ok.status).toBe(401);
    expect(ok.headers.get("x-request-id")).toBe(mine);
    expect(await logged(() => lines.find((l) => l.requestId === mine), "401 line")).toMatchObject({ event: "request", status: 401, route: "/api/v1/threads" });
    expect(raw.join("\n")).not.toContain("tl_not-a-real-key");

    const bad = await fetchApp("/health", { headers: { "x-request-id": 'has spaces and "quotes"' } });
    expect(bad.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("a search request's line says whether the KV cache answered, and never holds the query", async () => {
    const { apiKey } = await newThread();
    const q = `query ${crypto.randomUUID()}`;
    const ids = [];
    for (let i = 0; i < 2; i++) {
      const res = await fetchApp(`/api/v1/search?q=${encodeURIComponent(q)}`, {}, apiKey);
      expect(res.status).toBe(200);
      ids.push(res.headers.get("x-request-id"));
    }
    const [miss, hit] = await Promise.all(ids.map((id) => logged(() => lines.find((l) => l.event === "request" && l.requestId === id), "search line")));
    expect(miss).toMatchObject({ route: "/api/v1/search", status: 200, searchMode: "hybrid", cacheHit: false, searchMs: expect.any(Number) });
    expect(hit).toMatchObject({ cacheHit: true });
    expect(raw.join("\n")).not.toContain(q);
  });

  it("never logs the ?token= of a WebSocket connection", async () => {
    const { threadId, apiKey } = await newThread();
    const client = await ChatClient.connect(threadId, apiKey);
    client.close();
    const line = await logged(() => lines.find((l) => l.event === "request" && l.threadId === threadId), "upgrade line");
    expect(line).toMatchObject({ route: "/agents/*", status: 101, path: `/agents/thread-agent/${threadId}` });
    expect(raw.join("\n")).not.toContain(apiKey);
  });
});

describe("turn logs and metrics", () => {
  it("a WebSocket turn with a search: one line with model, tokens, tool outcome, cache hit, timings; no message text", async () => {
    const { threadId, userId, apiKey } = await newThread();
    const client = await ChatClient.connect(threadId, apiKey);
    const secret = `search for the ${crypto.randomUUID()} notes`;
    const first = client.sendChat(secret);
    expect((await client.response(first.requestId)).error).toBeUndefined();
    const line = await turnLine(first.requestId);
    expect(line).toMatchObject({
      level: "info",
      threadId,
      userId,
      transport: "ws",
      frame: "cf_agent_use_chat_request",
      trigger: "submit-message",
      status: "ok",
      model: "fake-model",
      offline: false,
      inputTokens: expect.any(Number),
      outputTokens: expect.any(Number),
      tools: [{ name: "hybrid_search", outcome: "ok", ms: expect.any(Number), cached: false }],
      cacheHit: false,
    });
    expect(line.outputTokens).toBeGreaterThan(0);
    expect(line.firstChunkMs).toBeGreaterThan(0);
    expect(line.firstChunkMs).toBeLessThanOrEqual(line.durationMs);
    expect(line.content).toBeUndefined();

    // The same search again is answered from the KV cache.
    const second = client.sendChat(secret, []);
    await client.response(second.requestId);
    expect(await turnLine(second.requestId)).toMatchObject({ status: "ok", tools: [{ name: "hybrid_search", outcome: "ok", cached: true }], cacheHit: true });
    client.close();
    // The user's words reached no log line.
    expect(raw.join("\n")).not.toContain(secret);

    const [a, b] = await turnPoint(threadId, 2);
    expect(a).toMatchObject({ kind: "turn", userId, transport: "ws", status: "ok", model: "fake-model", toolCalls: 1, toolErrors: 0, searchCalls: 1, searchCacheHits: 0 });
    expect(a!.durationMs).toBe(line.durationMs);
    expect(a!.outputTokens).toBe(line.outputTokens);
    expect(b).toMatchObject({ searchCalls: 1, searchCacheHits: 1 });
  });

  it("logs the user's text only on a thread whose log_message_content flag is on", async () => {
    const { threadId, apiKey } = await newThread();
    expect((await sendJson("PUT", `/api/v1/admin/threads/${threadId}/flags/log_message_content`, { value: true })).status).toBe(200);
    const client = await ChatClient.connect(threadId, apiKey);
    const text = `debug me ${crypto.randomUUID()}`;
    const { requestId } = client.sendChat(text);
    await client.response(requestId);
    client.close();
    expect(await turnLine(requestId)).toMatchObject({ status: "ok", content: text });
  });

  it("an HTTP turn carries the request's id; a failed model call is an error turn", async () => {
    const { threadId, apiKey } = await newThread();
    const res = await httpTurn(threadId, "hello", apiKey);
    expect(res.status).toBe(200);
    const requestId = res.headers.get("x-request-id")!;
    const line = await turnLine(requestId);
    expect(line).toMatchObject({ transport: "http", status: "ok", threadId, tools: [] });
    expect(line.turnId).not.toBe(requestId);

    const failed = await httpTurn(threadId, "[fail] please", apiKey);
    expect(await turnLine(failed.headers.get("x-request-id")!)).toMatchObject({ level: "error", status: "error", threadId });
  });

  it("a turn refused at the gate is logged and counted with its code", async () => {
    // The fake model spends more than 10 tokens a turn: the second turn finds the budget gone.
    const { threadId, apiKey } = await newThread(undefined, { tokenBudget: 10 });
    const client = await ChatClient.connect(threadId, apiKey);
    await client.response(client.sendChat("spend").requestId);
    const { requestId } = client.sendChat("hello", []);
    expect((await client.response(requestId)).error).toBeDefined();
    client.close();
    // A refusal is the service working as configured, not a fault: info, like the request it answers.
    expect(await turnLine(requestId)).toMatchObject({ level: "info", status: "refused", code: "token_budget_exhausted", transport: "ws" });
    const [, point] = await turnPoint(threadId, 2);
    expect(point).toMatchObject({ status: "refused", model: null, toolCalls: 0 });
  });
});
