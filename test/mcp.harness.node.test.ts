import type { Tool } from "ai";
import { describe, expect, it } from "vitest";
import type { LimiterStorage } from "../src/authority/sliding-window.ts";
import { getConfig } from "../src/config.ts";
import { MAX_MCP_TOOLS, McpFailure, mcpToolName, mcpTools, type CatalogTool, type McpCaller } from "../src/mcp/tools.ts";

const configOf = (timeoutMs: number) => getConfig({ MCP_TIMEOUT_MS: String(timeoutMs), MCP_RETRIES: "2", MCP_RATE_WINDOW_SECONDS: "60" } as unknown as Env);
// Room for the retries' backoff (at most 100 + 200 ms) inside the deadline.
const config = configOf(5000);

function memoryStorage(): LimiterStorage {
  const m = new Map<string, unknown>();
  return { get: async (k: string) => m.get(k), put: async (k: string, v: unknown) => void m.set(k, v) } as unknown as LimiterStorage;
}

/** A caller whose every attempt is answered by `answer` (given the attempt's options), recording what it was asked. */
function fakeCaller(answer: (attempt: number, opts: { deadline: number; reconnect: boolean }) => Promise<unknown>) {
  const attempts: { reconnect: boolean }[] = [];
  const abandoned: string[] = [];
  const caller: McpCaller = {
    call: async (_server, _tool, _args, opts) => {
      attempts.push({ reconnect: opts.reconnect });
      return (await answer(attempts.length - 1, opts)) as never;
    },
    abandon: async (id) => void abandoned.push(id),
  };
  return { caller, attempts, abandoned };
}

const echo: CatalogTool = { name: "echo", description: "Echo", inputSchema: { type: "object", properties: { text: { type: "string" } } } };
const run = (caller: McpCaller, rateLimit = 10, tool: CatalogTool = echo, cfg = config) => {
  const tools = mcpTools(caller, [{ id: "srv-1", name: "notes", tools: [tool] }], { config: cfg, threadId: "t", storage: memoryStorage(), rateLimit });
  const t = tools[mcpToolName("notes", tool.name)] as Tool<Record<string, unknown>, Record<string, any>>;
  return (args: Record<string, unknown> = {}) => t.execute!(args, { toolCallId: "c", messages: [], context: {} }) as Promise<Record<string, any>>;
};
const httpError = (status: number) => Object.assign(new Error(`HTTP ${status}`), { status });

describe("the MCP tool harness", () => {
  it("gives the model the server's text, names what is not text, and caps what it passes on", async () => {
    const { caller } = fakeCaller(async () => ({
      content: [
        { type: "text", text: "a".repeat(10_000) },
        { type: "image", data: "…" },
        { type: "text", text: "b".repeat(10_000) },
      ],
      structuredContent: { n: 1 },
    }));
    const out = await run(caller)();
    expect(out.status).toBe("ok");
    expect(out.content.map((c: { type: string; text?: string }) => [c.type, c.text?.length])).toEqual([
      ["text", 10_000],
      ["image", undefined],
      ["text", 6_000],
    ]);
    expect(out.content[1]).toEqual({ type: "image", omitted: "not text: not shown to the model" });
    expect(out).toMatchObject({ structuredContent: { n: 1 }, truncated: true });
  });

  it("a tool error is mcp_error, not retried", async () => {
    const { caller, attempts } = fakeCaller(async () => ({ isError: true, content: [{ type: "text", text: "no such note" }] }));
    expect(await run(caller)()).toEqual({ status: "mcp_error", message: "The tool reported an error: no such note" });
    expect(attempts).toHaveLength(1);
  });

  it("retries transient failures, connecting again each time, and answers once one succeeds", async () => {
    const { caller, attempts } = fakeCaller(async (n) => {
      if (n === 0) throw new TypeError("Network connection lost.");
      if (n === 1) throw httpError(503);
      return { content: [{ type: "text", text: "ok" }] };
    });
    expect(await run(caller)()).toEqual({ status: "ok", content: [{ type: "text", text: "ok" }] });
    expect(attempts).toEqual([{ reconnect: false }, { reconnect: true }, { reconnect: true }]);
  });

  it("gives up after MCP_RETRIES: mcp_unavailable", async () => {
    const { caller, attempts } = fakeCaller(async () => {
      throw new McpFailure("mcp_unavailable", "connect ECONNREFUSED", true);
    });
    expect(await run(caller)()).toEqual({
      status: "mcp_unavailable",
      message: expect.stringMatching(/"notes" could not be reached or refused the request \(connect ECONNREFUSED\)/),
    });
    expect(attempts).toHaveLength(3);
  });

  it("refused credentials are mcp_unavailable and a protocol error is mcp_error, neither retried", async () => {
    for (const [err, status] of [
      [httpError(401), "mcp_unavailable"],
      [httpError(403), "mcp_unavailable"],
      [Object.assign(new Error("Invalid params"), { code: -32602 }), "mcp_error"],
      [httpError(500), "mcp_error"],
    ] as const) {
      const { caller, attempts } = fakeCaller(async () => {
        throw err;
      });
      expect([err.message, (await run(caller)()).status, attempts.length]).toEqual([err.message, status, 1]);
    }
  });

  it("a call past its deadline is a timeout, and its connection is given up", async () => {
    // As the MCP SDK rejects a request past the `timeout` it was given.
    const { caller, abandoned } = fakeCaller(
      (_n, opts) => new Promise((_, reject) => setTimeout(() => reject(Object.assign(new Error("Request timed out"), { code: "REQUEST_TIMEOUT" })), opts.deadline - Date.now())),
    );
    expect(await run(caller, 10, echo, configOf(200))()).toEqual({ status: "timeout", message: expect.stringMatching(/did not answer within 200 ms/) });
    expect(abandoned).toEqual(["srv-1"]);
    const connecting = fakeCaller(async () => {
      throw new McpFailure("timeout", "the server did not answer in time");
    });
    expect((await run(connecting.caller)()).status).toBe("timeout");
  });

  it("rate-limits calls per thread before reaching the server", async () => {
    const { caller, attempts } = fakeCaller(async () => ({ content: [] }));
    const call = run(caller, 2);
    expect((await call()).status).toBe("ok");
    expect((await call()).status).toBe("ok");
    expect(await call()).toEqual({ status: "rate_limited", retryAfterSeconds: expect.any(Number), message: expect.stringMatching(/2 calls per 60 s/) });
    expect(attempts).toHaveLength(2);
  });

  it("names tools mcp_<server>_<tool> in the characters model APIs take, offering each name once and at most MAX_MCP_TOOLS in all", () => {
    expect(mcpToolName("gh", "repos/list.all")).toBe("mcp_gh_repos_list_all");
    expect(mcpToolName("gh", "x".repeat(100))).toHaveLength(64);
    const { caller } = fakeCaller(async () => ({}));
    const many = Array.from({ length: 64 }, (_, i) => ({ name: `t${i}` }));
    const tools = mcpTools(
      caller,
      [
        { id: "a", name: "a", tools: [{ name: "x.y" }, { name: "x_y" }] },
        { id: "b", name: "b", tools: many },
        { id: "c", name: "c", tools: many },
      ],
      { config, threadId: "t", storage: memoryStorage(), rateLimit: 1 },
    );
    expect(Object.keys(tools)).toHaveLength(MAX_MCP_TOOLS);
    expect(Object.keys(tools).slice(0, 2)).toEqual(["mcp_a_x_y", "mcp_b_t0"]);
  });

  it("offers a tool whose input schema is not an object schema with an empty object schema", async () => {
    const { caller } = fakeCaller(async () => ({}));
    const tools = mcpTools(caller, [{ id: "a", name: "a", tools: [{ name: "odd", inputSchema: { type: "string" } }] }], {
      config,
      threadId: "t",
      storage: memoryStorage(),
      rateLimit: 1,
    });
    expect(await (tools.mcp_a_odd!.inputSchema as { jsonSchema: unknown }).jsonSchema).toEqual({ type: "object" });
  });
});
