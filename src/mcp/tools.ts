import { jsonSchema, tool, type ToolSet } from "ai";
import { takeSlot, type LimiterStorage } from "../authority/sliding-window.ts";
import type { Config } from "../config.ts";
import { describeError, log } from "../observability/log.ts";
import { isTransient, withRetry } from "../resilience.ts";

/** A tool as a server listed it (what a thread keeps of each server's catalog). */
export type CatalogTool = { name: string; description?: string; inputSchema?: Record<string, unknown> };
export type McpServerTools = { id: string; name: string; tools: CatalogTool[] };

/** What an MCP tool answers the model: the server's result, or a failure it can read and explain. */
export type McpToolOutput =
  | { status: "ok"; content: McpContent[]; structuredContent?: unknown; truncated?: true }
  | { status: "mcp_error" | "mcp_unavailable" | "timeout"; message: string }
  | { status: "rate_limited"; retryAfterSeconds: number; message: string };
type McpContent = { type: "text"; text: string } | { type: string; omitted: string };
type CallResult = { content?: unknown; structuredContent?: unknown; isError?: boolean };

/** A failure reaching a server (not one it reported): `retryable` when trying again may help. */
export class McpFailure extends Error {
  readonly status: "mcp_unavailable" | "timeout";
  readonly retryable: boolean;
  constructor(status: "mcp_unavailable" | "timeout", message: string, retryable = false) {
    super(message);
    this.status = status;
    this.retryable = retryable;
    this.name = "McpFailure";
  }
}

/**
 * How a thread reaches its servers (src/mcp/client.ts): a call that connects first if it must,
 * within the deadline; and giving up on a server whose call ran out of time.
 */
export type McpCaller = {
  call(serverId: string, tool: string, args: unknown, opts: { signal?: AbortSignal; deadline: number; reconnect: boolean }): Promise<CallResult>;
  abandon(serverId: string): Promise<void>;
};

export const MAX_TOOLS_PER_SERVER = 64;
/** Of all a thread's servers together: model APIs take 128 tools in all, and the server's own need room. */
export const MAX_MCP_TOOLS = 100;
const MAX_RESULT_CHARS = 16_000;
const MAX_DESCRIPTION_CHARS = 1_000;
const RATE_KEY = "mcp_tools:calls";

/** `mcp_<server>_<tool>`, in the characters and length model APIs accept for a function name. */
export const mcpToolName = (server: string, tool: string) => `mcp_${server}_${tool.replace(/[^A-Za-z0-9_-]/g, "_")}`.slice(0, 64);

const statusOf = (err: unknown) => {
  const e = err as { status?: unknown; data?: { status?: unknown } };
  return typeof e?.status === "number" ? e.status : typeof e?.data?.status === "number" ? e.data.status : undefined;
};
const retryable = (err: unknown) => (err instanceof McpFailure ? err.retryable : isTransient(err) || [429, 502, 503, 504].includes(statusOf(err) ?? 0));

/** The server's result as the model reads it: text (at most MAX_RESULT_CHARS in all), other content named but not inlined. */
function fromResult(result: CallResult): McpToolOutput {
  const blocks = Array.isArray(result.content) ? (result.content as { type?: unknown; text?: unknown }[]) : [];
  let room = MAX_RESULT_CHARS;
  let truncated = false;
  const content = blocks.map((b): McpContent => {
    if (b?.type !== "text" || typeof b.text !== "string") return { type: String(b?.type ?? "unknown"), omitted: "not text: not shown to the model" };
    const text = b.text.slice(0, room);
    truncated ||= text.length < b.text.length;
    room -= text.length;
    return { type: "text", text };
  });
  const text = content.flatMap((c) => ("text" in c ? [c.text] : [])).join("\n");
  if (result.isError) return { status: "mcp_error", message: `The tool reported an error: ${text.slice(0, MAX_DESCRIPTION_CHARS) || "(no message)"}` };
  const structured = result.structuredContent === undefined ? undefined : JSON.stringify(result.structuredContent);
  return {
    status: "ok",
    content,
    ...(structured !== undefined && structured.length <= MAX_RESULT_CHARS && { structuredContent: result.structuredContent }),
    ...((truncated || (structured?.length ?? 0) > MAX_RESULT_CHARS) && { truncated: true as const }),
  };
}

type Harness = { config: Config; threadId: string; storage: LimiterStorage; rateLimit: number };

/**
 * One server's tool behind hybrid_search's harness: a per-thread rate limit, a deadline for
 * connecting and answering, retries of transient failures, and every failure as a result the model
 * can read (`mcp_unavailable`, `mcp_error`, `timeout`, `rate_limited`), never an exception that ends the turn.
 */
function mcpTool(caller: McpCaller, server: McpServerTools, t: CatalogTool, h: Harness) {
  const { config } = h;
  return tool({
    description: `${(t.description ?? t.name).slice(0, MAX_DESCRIPTION_CHARS)} (tool "${t.name}" of the user's MCP server "${server.name}")`,
    // Function parameters are an object schema; anything else from a server would fail the model request, and so the turn.
    inputSchema: jsonSchema<Record<string, unknown>>((t.inputSchema?.type === "object" ? t.inputSchema : { type: "object" }) as Parameters<typeof jsonSchema>[0]),
    execute: async (args, { abortSignal }): Promise<McpToolOutput> => {
      const slot = await takeSlot(h.storage, RATE_KEY, h.rateLimit, config.MCP_RATE_WINDOW_SECONDS);
      if (!slot.ok)
        return {
          status: "rate_limited",
          retryAfterSeconds: slot.retryAfterSeconds,
          message: `MCP tools are rate limited on this thread (${h.rateLimit} calls per ${config.MCP_RATE_WINDOW_SECONDS} s); try again in ${slot.retryAfterSeconds} s.`,
        };
      const deadline = Date.now() + config.MCP_TIMEOUT_MS;
      try {
        const result = await withRetry(
          // A retry connects again: the session or transport that failed may be the cause.
          (attempt) => caller.call(server.id, t.name, args, { signal: abortSignal, deadline, reconnect: attempt > 0 }),
          { retries: config.MCP_RETRIES, baseDelayMs: 100, maxDelayMs: 1000 },
          (err) => Date.now() < deadline && retryable(err),
        );
        return fromResult(result);
      } catch (err) {
        const output = failure(err, server.name, Date.now() >= deadline, config.MCP_TIMEOUT_MS);
        if (output.status === "timeout") await caller.abandon(server.id);
        log("warn", "mcp_tool_failed", { threadId: h.threadId, serverId: server.id, tool: t.name, status: output.status, error: describeError(err) });
        return output;
      }
    },
  });
}

// The MCP SDK's own timeout (SdkErrorCode.RequestTimeout), the deadline passed to it.
export const isSdkTimeout = (err: unknown) => (err as { code?: unknown })?.code === "REQUEST_TIMEOUT";

function failure(err: unknown, server: string, late: boolean, timeoutMs: number): McpToolOutput {
  if (late || isSdkTimeout(err) || (err instanceof McpFailure && err.status === "timeout"))
    return { status: "timeout", message: `The MCP server "${server}" did not answer within ${timeoutMs} ms; answer without it and say so.` };
  const detail = (err instanceof Error ? err.message : String(err)).slice(0, 300);
  const status = statusOf(err);
  if (err instanceof McpFailure || retryable(err) || status === 401 || status === 403)
    return { status: "mcp_unavailable", message: `The MCP server "${server}" could not be reached or refused the request (${detail}); answer without it and say so.` };
  // The server answered with an error of its own (bad arguments, an unknown tool, its own failure).
  return { status: "mcp_error", message: `The MCP server "${server}" failed the call: ${detail}` };
}

/** The tools of a thread's MCP servers, named `mcp_<server>_<tool>` (src/agent/tools gives them their approval policy). */
export function mcpTools(caller: McpCaller, servers: McpServerTools[], harness: Harness): ToolSet {
  const tools: ToolSet = {};
  let offered = 0;
  for (const server of servers)
    for (const t of server.tools.slice(0, MAX_TOOLS_PER_SERVER)) {
      const name = mcpToolName(server.name, t.name);
      if (tools[name] || offered >= MAX_MCP_TOOLS) continue;
      tools[name] = mcpTool(caller, server, t, harness);
      offered++;
    }
  return tools;
}
